from django.core.management.base import BaseCommand, CommandError

from accounts.services import workspace_create
from config.api.errors import ApplicationError


class Command(BaseCommand):
    help = "Create a workspace (the tenant that owns keys, minds and knowledge)."

    def add_arguments(self, parser):
        parser.add_argument("name")

    def handle(self, *args, name: str, **options):
        try:
            workspace = workspace_create(name=name)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"Created workspace {workspace.name} ({workspace.id})")
