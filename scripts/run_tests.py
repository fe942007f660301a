"""`make test`: the whole suite on real PostgreSQL + pgvector (embedded unless DATABASE_URL) and real Redis."""

import os
import subprocess
import sys

from services import ROOT, require_redis, start_embedded_db_if_needed, stop_embedded_db


def main() -> int:
    require_redis(os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))
    started = start_embedded_db_if_needed()
    try:
        return subprocess.run([sys.executable, "-m", "pytest", *sys.argv[1:]], cwd=ROOT).returncode
    finally:
        if started:
            stop_embedded_db()


if __name__ == "__main__":
    sys.exit(main())
