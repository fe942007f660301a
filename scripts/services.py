"""Shared start-up checks for `make dev` and `make test`: Redis reachable, database up."""

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def require_redis(url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except Exception as exc:
        parsed = urlparse(url)
        sys.exit(
            f"Redis is not reachable at {parsed.hostname}:{parsed.port or 6379} ({exc.__class__.__name__}). "
            "Start it with `redis-server --daemonize yes` (Debian: apt-get install redis-server) "
            "or set REDIS_URL to a running Redis."
        )


def start_embedded_db_if_needed() -> bool:
    """Starts the embedded PostgreSQL unless DATABASE_URL is set; True if this call started it."""
    if os.environ.get("DATABASE_URL"):
        return False
    running = (
        subprocess.run([PY, str(ROOT / "scripts" / "devdb.py"), "status"], capture_output=True).returncode
        == 0
    )
    if running:
        return False
    subprocess.run([PY, str(ROOT / "scripts" / "devdb.py"), "start"], check=True)
    return True


def stop_embedded_db() -> None:
    subprocess.run([PY, str(ROOT / "scripts" / "devdb.py"), "stop"], check=False)
