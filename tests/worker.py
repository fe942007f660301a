"""A real Celery worker process for end-to-end tests, pointed at the test database and test Redis."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ALL_QUEUES = "default,ingestion,transcription,webhooks"


def test_database_url() -> str:
    from django.db import connection

    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgresql://{auth}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


class WorkerProcess:
    """Starts `celery worker` as a child process group; `kill()` sends SIGKILL to the whole group."""

    def __init__(self, name: str = "worker", queues: str = ALL_QUEUES, concurrency: int = 1, extra_env=None):
        self.name = name
        self.queues = queues
        self.concurrency = concurrency
        self.extra_env = extra_env or {}
        self.log_path = ROOT / ".data" / "test-logs" / f"{name}-{os.getpid()}.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90) -> "WorkerProcess":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "DATABASE_URL": test_database_url(),
            "SSRF_ALLOW_LOOPBACK": "1",
            "DB_CONN_MAX_AGE": "0",
            # Webhook retries in fractions of a second so the retry tests stay fast.
            "WEBHOOK_RETRY_BASE_SECONDS": "0.2",
            **self.extra_env,
        }
        self._log = open(self.log_path, "ab")  # kept open for the worker's lifetime
        start_offset = self.log_path.stat().st_size
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-Q",
                self.queues,
                "-c",
                str(self.concurrency),
                "-n",
                f"{self.name}-{os.getpid()}@%h",
                "-l",
                "info",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"worker exited early; see {self.log_path}:\n{self.log_text(start_offset)}"
                )
            if b" ready." in self.log_path.read_bytes()[start_offset:]:
                return self
            time.sleep(0.1)
        raise RuntimeError(f"worker not ready after {timeout}s; see {self.log_path}")

    def log_text(self, offset: int = 0) -> str:
        return self.log_path.read_bytes()[offset:].decode(errors="replace")[-4000:]

    def kill(self) -> None:
        """SIGKILL the worker and its pool children: nothing gets to clean up."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        if getattr(self, "_log", None):
            self._log.close()


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker):
    """One real worker for the whole session, consuming every queue. Use with `transactional_db`."""
    worker = WorkerProcess().start()
    yield worker
    worker.stop()
