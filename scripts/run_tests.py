"""`make test`: the whole suite on real PostgreSQL + pgvector (embedded unless DATABASE_URL) and real Redis
(embedded unless TEST_REDIS_URL)."""

import os
import signal
import subprocess
import sys

from services import (
    ROOT,
    redis_url_or_embedded,
    start_embedded_db_if_needed,
    stop_embedded_db,
    stop_embedded_redis,
)


def main() -> int:
    # A SIGTERM (a CI timeout, a closed terminal) unwinds like Ctrl-C, so the servers this run started are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    # The development secret key is allowed in this run and the processes it starts (config/checks.py).
    os.environ.setdefault("MINDS_DEV_RUN", "1")
    # tests/envplugin.py hands TEST_REDIS_URL to Django as REDIS_URL; the tests' Celery worker inherits it.
    os.environ["TEST_REDIS_URL"], started_redis = redis_url_or_embedded("TEST_REDIS_URL", db=15)
    started_db = False
    try:
        started_db = start_embedded_db_if_needed()
        return subprocess.run([sys.executable, "-m", "pytest", *sys.argv[1:]], cwd=ROOT).returncode
    finally:
        # Only what this run started: a server already running belongs to a `make dev` (or another run).
        if started_db:
            stop_embedded_db()
        if started_redis:
            stop_embedded_redis()


if __name__ == "__main__":
    sys.exit(main())
