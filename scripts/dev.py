"""`make dev`: Redis and database, migrations, a demo key, then web + Celery worker + beat until Ctrl-C."""

import os
import signal
import subprocess
import sys
import time

from services import (
    PY,
    ROOT,
    redis_url_or_embedded,
    start_embedded_db_if_needed,
    stop_embedded_db,
    stop_embedded_redis,
)


def manage(*args: str, capture: bool = False) -> str:
    result = subprocess.run([PY, "manage.py", *args], cwd=ROOT, check=True, capture_output=capture, text=True)
    return result.stdout if capture else ""


def main() -> int:
    port = os.environ.get("PORT", "8000")
    os.environ.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{port}")
    # Exported before anything starts: migrate, the web server, the worker and beat all read it.
    os.environ["REDIS_URL"], started_redis = redis_url_or_embedded("REDIS_URL", db=0)
    started_db = False
    children: list[subprocess.Popen] = []

    def shutdown(*_):
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
        if started_db:
            stop_embedded_db()
        if started_redis:
            stop_embedded_redis()
        sys.exit(0)

    signal.signal(signal.SIGINT, shutdown)
    signal.signal(signal.SIGTERM, shutdown)
    try:
        started_db = start_embedded_db_if_needed()
        manage("migrate", "--noinput", "-v", "0")
        manage("collectstatic", "--noinput", "-v", "0")
        key = manage("seed_demo", capture=True).strip().splitlines()[-1]
    except subprocess.CalledProcessError:
        shutdown()
    commands = [
        [PY, "-m", "gunicorn", "config.wsgi", "-c", "config/gunicorn.conf.py", "-b", f"127.0.0.1:{port}"],
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
            os.environ.get("CELERY_QUEUES", "default,ingestion,transcription,webhooks"),
            "-c",
            "2",
        ],
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
    ]
    for command in commands:
        # Own process groups: Ctrl-C reaches only this supervisor, which then stops each child in order.
        children.append(subprocess.Popen(command, cwd=ROOT, start_new_session=True))
    print(
        f"\nMinds is running at http://127.0.0.1:{port}  (API docs: /api/docs, admin: /admin/, demo page: /m/demo-mind)\n"
        f"Demo API key (all scopes): {key}\n"
        f"Try: curl -H 'Authorization: Bearer {key}' http://127.0.0.1:{port}/api/v1/minds\n"
        "Press Ctrl-C to stop everything.\n",
        flush=True,
    )
    while True:
        for child in children:
            if child.poll() is not None:
                print(f"a child process exited ({' '.join(child.args[:4])}); stopping", file=sys.stderr)
                shutdown()
        time.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main())
