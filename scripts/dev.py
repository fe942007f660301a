"""`make dev`: Redis and database, migrations, a demo key, then web + Celery worker + beat until Ctrl-C.

The three run under scripts/supervisor.py: one that dies is restarted with a backoff, and the database and Redis
stay up; only Ctrl-C (or a program that keeps failing at start) stops everything."""

import os
import signal
import subprocess
import sys

from services import (
    PY,
    ROOT,
    redis_url_or_embedded,
    start_embedded_db_if_needed,
    stop_embedded_db,
    stop_embedded_redis,
)
from supervisor import Program, Supervisor


def manage(*args: str, capture: bool = False) -> str:
    result = subprocess.run([PY, "manage.py", *args], cwd=ROOT, check=True, capture_output=capture, text=True)
    return result.stdout if capture else ""


def main() -> int:
    port = os.environ.get("PORT", "8000")
    os.environ.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{port}")
    # A local run: the development secret key is allowed with DEBUG off (config/checks.py, minds.E001).
    os.environ.setdefault("MINDS_DEV_RUN", "1")
    # Exported before anything starts: migrate, the web server, the worker and beat all read it.
    os.environ["REDIS_URL"], started_redis = redis_url_or_embedded("REDIS_URL", db=0)
    started_db = False
    supervisor: Supervisor | None = None

    def stop_servers() -> None:
        if started_db:
            stop_embedded_db()
        if started_redis:
            stop_embedded_redis()

    def on_signal(*_):
        if supervisor is None:  # still migrating: nothing to supervise yet
            stop_servers()
            sys.exit(0)
        supervisor.stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        started_db = start_embedded_db_if_needed()
        manage("migrate", "--noinput", "-v", "0")
        manage("collectstatic", "--noinput", "-v", "0")
        key = manage("seed_demo", capture=True).strip().splitlines()[-1]
    except subprocess.CalledProcessError:
        stop_servers()
        return 1
    queues = os.environ.get("CELERY_QUEUES", "default,ingestion,transcription,webhooks")
    supervisor = Supervisor(programs(port=port, queues=queues), cwd=ROOT)
    admin_path = "/" + os.environ.get("ADMIN_PATH", "admin/").strip("/") + "/"
    print(
        f"\nMinds is running at http://127.0.0.1:{port}  (API docs: /api/docs, admin: {admin_path}, "
        "demo page: /m/demo-mind)\n"
        f"Demo API key (all scopes): {key}\n"
        f"Try: curl -H 'Authorization: Bearer {key}' http://127.0.0.1:{port}/api/v1/minds\n"
        "A process that dies is restarted. Press Ctrl-C to stop everything.\n",
        flush=True,
    )
    try:
        return supervisor.run()
    finally:
        stop_servers()


def programs(*, port: str, queues: str) -> list[Program]:
    """The web server, the Celery worker and beat, as `make dev` runs them."""
    return [
        Program(
            "web",
            [PY, "-m", "gunicorn", "config.wsgi", "-c", "config/gunicorn.conf.py", "-b", f"127.0.0.1:{port}"],
        ),
        Program(
            "worker",
            [
                PY,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-l",
                "info",
                "-Q",
                queues,
                "-c",
                "2",
            ],
        ),
        Program(
            "beat",
            [
                PY,
                "-m",
                "celery",
                "-A",
                "config",
                "beat",
                "-l",
                "info",
                "-s",
                str(ROOT / ".data" / "celerybeat-schedule"),
            ],
        ),
    ]


if __name__ == "__main__":
    sys.exit(main())
