"""Shared set-up for benchmarks: a dedicated database on the embedded PostgreSQL, Django, real sample text.

The large real data sets (SciFact, XQuAD, the real-file corpus) are read from BENCH_DATA, by default
`../shared/corpus` beside the repository; the tests never read it (they use tests/fixtures/)."""

import ast
import csv
import io
import os
import platform
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DATA = Path(os.environ.get("BENCH_DATA") or ROOT.parent / "shared" / "corpus").resolve()
SCIFACT = "qa/scifact/scifact-dev.zip"
XQUAD = "qa/xquad-en/xquad.en.json"
sys.path.insert(0, str(ROOT))


def bench_data(*relatives: str) -> list[Path]:
    """The files `relatives` of BENCH_DATA. A missing one is not a crash: the script says which files are missing
    and how to point BENCH_DATA at them, and exits with status 2 (scripts check all theirs before any work)."""
    missing = [relative for relative in relatives if not (BENCH_DATA / relative).is_file()]
    if missing:
        script = Path(sys.argv[0]).name
        print(
            "\n".join(
                [
                    f"{script}: benchmark data not found under BENCH_DATA={BENCH_DATA}:",
                    *(f"  missing {relative}" for relative in missing),
                    "Set BENCH_DATA to the folder that holds them (default: ../shared/corpus beside the repository),",
                    f"e.g. BENCH_DATA=/path/to/corpus .venv/bin/python bench/{script}",
                ]
            ),
            file=sys.stderr,
        )
        raise SystemExit(2)
    return [BENCH_DATA / relative for relative in relatives]


def use_bench_database(name: str) -> str:
    """Points Django at database `name` on the server of DATABASE_URL (the embedded one by default), creating it."""
    import psycopg

    base = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:54329/minds")
    server = base.rsplit("/", 1)[0]
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{server}/{name}"
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # A local run: the development secret key is allowed (config/checks.py, minds.E001).
    os.environ.setdefault("MINDS_DEV_RUN", "1")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return url


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GB RAM, Python {platform.python_version()}"


def scifact_abstracts(limit: int | None = None) -> list[tuple[str, str]]:
    """(title, abstract) pairs of real scientific abstracts from the SciFact corpus."""
    (path,) = bench_data(SCIFACT)
    with zipfile.ZipFile(path) as archive:
        with archive.open("corpus_train.csv") as handle:
            rows = csv.DictReader(io.TextIOWrapper(handle, encoding="utf-8"))
            out = []
            for row in rows:
                try:
                    sentences = ast.literal_eval(
                        row["abstract"].replace("'\n '", "', '").replace('"\n "', '", "')
                    )
                except (ValueError, SyntaxError):
                    sentences = [row["abstract"]]
                text = " ".join(sentences) if isinstance(sentences, (list, tuple)) else str(sentences)
                out.append((row["title"], text))
                if limit and len(out) >= limit:
                    break
    return out


def git_revision() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown"


def publish(lines: list[str], write: str | None) -> None:
    """Prints a benchmark's Markdown and, with --write, saves it for bench/report.py."""
    text = "\n".join(lines) + "\n"
    print(text)
    if write:
        Path(write).write_text(text)
