"""`manage.py ingest --mind <slug> PATH…`: upload files or folders into a mind and follow them to ready/failed.

The files go through the same services as the API (type from content, size limits, duplicates); a running worker
(`make dev`) processes them. A progress bar shows how many have finished; a summary table follows.
"""

import time
from pathlib import Path

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from config.api.errors import ApplicationError
from knowledge import services
from knowledge.models import Source
from knowledge.serializers import file_url
from minds.models import Mind


class Command(BaseCommand):
    help = "Uploads files (or every file in folders) into a mind and waits until each is ready or failed."

    def add_arguments(self, parser):
        parser.add_argument("--mind", required=True, help="the mind's slug or id")
        parser.add_argument("paths", nargs="+", help="files or folders")
        parser.add_argument(
            "--timeout", type=float, default=3600, help="seconds to wait for processing (default 3600)"
        )
        parser.add_argument("--no-wait", action="store_true", help="queue the files and return")

    def handle(self, *args, **options):
        # Slugs are unique per workspace only: a slug two workspaces use names no single mind.
        by_slug = list(Mind.objects.filter(slug=options["mind"])[:2])
        if len(by_slug) > 1:
            raise CommandError(f"Several workspaces have a mind with slug {options['mind']!r}: pass its id.")
        mind = (by_slug or [None])[0] or Mind.objects.filter(id=options["mind"]).first()
        if mind is None:
            raise CommandError(f"No mind with slug or id {options['mind']!r}.")
        files = self._files(options["paths"])
        if not files:
            raise CommandError("No files found in the given paths.")
        console = Console(file=self.stdout, width=120)
        rows: dict[Path, dict] = {}
        for path in files:
            rows[path] = self._submit(mind, path)
        pending = {p: r for p, r in rows.items() if r.get("source_id")}
        if not options["no_wait"] and pending:
            self._follow(console, pending, options["timeout"])
        self._summary(console, rows)
        failed = [r for r in rows.values() if r["status"] not in ("ready", "pending", "duplicate")]
        if failed and not options["no_wait"]:
            raise CommandError(f"{len(failed)} of {len(rows)} file(s) did not become ready.")

    @staticmethod
    def _files(paths: list[str]) -> list[Path]:
        found: list[Path] = []
        for raw in paths:
            path = Path(raw)
            if path.is_dir():
                found.extend(sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")))
            elif path.is_file():
                found.append(path)
            else:
                raise CommandError(f"{raw}: no such file or folder.")
        return found

    @staticmethod
    def _submit(mind: Mind, path: Path) -> dict:
        try:
            with path.open("rb") as handle:
                upload = services.upload_create(mind=mind, file=File(handle, name=path.name))
            kind = "podcast" if upload.category == "audio" else "document"
            source = services.source_create(mind=mind, kind=kind, file_url=file_url(upload), name=path.name)
            return {"source_id": source.id, "status": "pending", "chunks": 0, "error": ""}
        except ApplicationError as exc:
            status = "duplicate" if exc.code == "duplicate_source" else "rejected"
            return {"source_id": None, "status": status, "chunks": 0, "error": f"{exc.code}: {exc.message}"}

    @staticmethod
    def _follow(console: Console, pending: dict[Path, dict], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with Progress(
            TextColumn("[bold]ingesting"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=console,
        ) as progress:
            task = progress.add_task("", total=len(pending))
            while time.monotonic() < deadline:
                ids = [r["source_id"] for r in pending.values()]
                by_id = {s.id: s for s in Source.objects.filter(id__in=ids)}
                for row in pending.values():
                    source = by_id.get(row["source_id"])
                    if source is None:
                        row.update(status="deleted")
                        continue
                    row.update(
                        status=source.status, chunks=source.chunk_count, error=source.error_message or ""
                    )
                    if source.error_code:
                        row["error"] = f"{source.error_code}: {source.error_message}"
                finished = sum(1 for r in pending.values() if r["status"] in ("ready", "failed", "deleted"))
                busy = [p.name for p, r in pending.items() if r["status"] in ("processing", "transcribing")]
                progress.update(task, completed=finished, description=", ".join(busy)[:60])
                if finished == len(pending):
                    return
                time.sleep(0.5)
        for row in pending.values():
            if row["status"] not in ("ready", "failed"):
                row["error"] = (
                    row["error"] or "still unfinished when the command stopped waiting (is a worker running?)"
                )

    @staticmethod
    def _summary(console: Console, rows: dict[Path, dict]) -> None:
        table = Table(title="Ingestion summary")
        for column in ("file", "source", "status", "chunks", "error"):
            table.add_column(column)
        for path, row in rows.items():
            table.add_row(
                path.name, row["source_id"] or "-", row["status"], str(row["chunks"]), row["error"][:60]
            )
        console.print(table)
