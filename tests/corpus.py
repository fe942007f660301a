"""Where the shared real-file corpus lives; tests that need it skip with a reason when it is absent."""

from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


def corpus_file(relative: str) -> Path:
    path = CORPUS / relative
    if not path.exists():
        pytest.skip(f"the shared corpus file {relative} is not present at {CORPUS}")
    return path
