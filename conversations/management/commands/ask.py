"""`manage.py ask --mind <slug> "question"`: ask a mind from the command line and print the answer with sources."""

from django.core.management.base import BaseCommand, CommandError

from config.api.errors import ApplicationError
from conversations.chat import chat_complete
from minds.models import Mind


class Command(BaseCommand):
    help = "Asks a mind a question and prints the cited answer."

    def add_arguments(self, parser):
        parser.add_argument("--mind", required=True, help="the mind's slug or id")
        parser.add_argument("question")

    def handle(self, *args, **options):
        # Slugs are unique per workspace only: a slug two workspaces use names no single mind.
        by_slug = list(Mind.objects.filter(slug=options["mind"])[:2])
        if len(by_slug) > 1:
            raise CommandError(f"Several workspaces have a mind with slug {options['mind']!r}: pass its id.")
        mind = (by_slug or [None])[0] or Mind.objects.filter(id=options["mind"]).first()
        if mind is None:
            raise CommandError(f"No mind with slug or id {options['mind']!r}.")
        try:
            result = chat_complete(mind=mind, message=options["question"], channel="api")
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(result.content)
        for citation in result.citations:
            where = f", page {citation.page}" if citation.page else ""
            if citation.start_seconds is not None:
                where = f", at {int(citation.start_seconds) // 60}:{int(citation.start_seconds) % 60:02d}"
            self.stdout.write(
                f"  [{citation.index}] {citation.source_name}{where}"
                + (f" — {citation.url}" if citation.url else "")
            )
