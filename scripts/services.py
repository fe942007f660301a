"""Shared start-up for `make dev` and `make test`: the configured Redis reachable or the embedded one, database up."""

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import devredis

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def require_redis(url: str, variable: str) -> None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except Exception as exc:
        parsed = urlparse(url)
        sys.exit(
            f"Redis is not reachable at {parsed.hostname}:{parsed.port or 6379} ({exc.__class__.__name__}). "
            f"Start it, point {variable} at a running Redis, or unset {variable} to use the embedded Redis."
        )


def redis_url_or_embedded(variable: str, db: int) -> tuple[str, bool]:
    """The Redis of `variable` when it is set (checked reachable), else a db of the embedded Redis, started if it
    is not running; True when this call started it."""
    url = os.environ.get(variable)
    if url:
        require_redis(url, variable)
        return url, False
    started = not devredis.is_running()
    if started:
        devredis.start()
    return devredis.url(db), started


def stop_embedded_redis() -> None:
    devredis.stop()


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
