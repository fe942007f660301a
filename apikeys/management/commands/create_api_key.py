from django.core.management.base import BaseCommand, CommandError

from accounts.models import Workspace
from apikeys.services import api_key_create, parse_scopes
from config.api.errors import ApplicationError


class Command(BaseCommand):
    help = "Create an API key; the plaintext key is printed once, as the last line."

    def add_arguments(self, parser):
        parser.add_argument("--workspace", required=True, help="workspace name or id")
        parser.add_argument("--scopes", required=True, help="comma-separated scopes, or `all`")
        parser.add_argument("--name", required=True)
        parser.add_argument("--expires-days", type=int, default=None)
        parser.add_argument("--minds", default="", help="comma-separated mind ids the key is restricted to")

    def handle(self, *args, **options):
        workspace = (
            Workspace.objects.filter(name=options["workspace"]).first()
            or Workspace.objects.filter(id=options["workspace"]).first()
        )
        if workspace is None:
            raise CommandError(
                f"No workspace named {options['workspace']!r}. Create it with create_workspace."
            )
        if options["expires_days"] is not None and options["expires_days"] < 1:
            raise CommandError("--expires-days must be at least 1.")
        try:
            created = api_key_create(
                workspace=workspace,
                name=options["name"],
                scopes=parse_scopes(options["scopes"]),
                expires_in_days=options["expires_days"],
                allowed_mind_ids=[m for m in options["minds"].split(",") if m],
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        key = created.api_key
        self.stdout.write(f"Created API key {key.name} ({key.id}) with scopes {', '.join(key.scopes)}")
        self.stdout.write("Store it now; it will not be shown again:")
        self.stdout.write(created.plaintext)
