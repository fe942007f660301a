"""Assembles docs/benchmarks.md from the per-benchmark results each script writes to docs/bench/*.md."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORDER = [
    "api",
    "page",
    "page_browser",
    "ingest",
    "retrieval",
    "chat",
    "quality",
    "rerank",
    "ocr",
    "resync",
    "load",
    "tools",
]
HEADER = """# Benchmarks

Measured on the project's machine type (2 cores, 24 GB, no GPU) with the commands shown in each section; each
benchmark uses its own database on the embedded PostgreSQL (pgvector 0.8) and Redis db 9. Rerun them all with
`make bench` (it rebuilds this page with `bench/report.py`). Targets come from the issues.

"""


def main():
    parts = [HEADER]
    for name in ORDER:
        path = ROOT / "docs" / "bench" / f"{name}.md"
        if path.exists():
            text = path.read_text().strip()
            parts.append(text.replace("\n# ", "\n## ").replace("# ", "## ", 1) + "\n")
    (ROOT / "docs" / "benchmarks.md").write_text("\n".join(parts))
    print("wrote docs/benchmarks.md")


if __name__ == "__main__":
    main()
