"""`manage.py reembed --workspace <id>`: re-embeds a workspace's chunks with the current embedder, without downtime.

Searches go on reading the old vectors until each source's new ones are swapped in (knowledge/reembed.py). Safe to
interrupt and run again: it resumes where it stopped; a finished run repeated changes nothing but the time spent.
"""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Workspace
from knowledge.embeddings import get_embedder
from knowledge.reembed import BATCH_SIZE, workspace_reembed


class Command(BaseCommand):
    help = "Re-embeds every chunk of a workspace with the current embedding model, swapping per source."

    def add_arguments(self, parser):
        parser.add_argument("--workspace", required=True, help="the workspace's id")
        parser.add_argument(
            "--batch-size", type=int, default=BATCH_SIZE, help=f"chunks per batch ({BATCH_SIZE})"
        )
        parser.add_argument(
            "--stale-only",
            action="store_true",
            help="only chunks whose embedding model is not the current one (after changing EMBEDDING_BACKEND)",
        )

    def handle(self, *args, **options):
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        workspace = Workspace.objects.filter(id=options["workspace"]).first()
        if workspace is None:
            raise CommandError(f"No workspace with id {options['workspace']!r}.")
        model = get_embedder().model_name
        self.stdout.write(f"Re-embedding workspace {workspace.id} ({workspace.name}) with {model}…")

        def progress(source, count: int) -> None:
            self.stdout.write(f"  {source.id} {source.name[:60]!r}: {count} chunks embedded, swapped in")

        done = workspace_reembed(
            workspace_id=workspace.id,
            batch_size=options["batch_size"],
            stale_only=options["stale_only"],
            on_source=progress,
        )
        self.stdout.write(
            self.style.SUCCESS(f"Done: {done.chunks} chunks of {done.sources} sources re-embedded.")
        )
