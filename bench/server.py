"""Runs the production server (gunicorn, config/gunicorn.conf.py) on a free port against a bench database."""

import os
import socket
import subprocess
import sys
import time
import urllib.request

from common import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    def __init__(self, env: dict, workers: int = 2, threads: int = 8, log: str = "bench-gunicorn.log"):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            **env,
            "WEB_CONCURRENCY": str(workers),
            "WEB_THREADS": str(threads),
            "DJANGO_DEBUG": "0",
        }
        self.log_path = ROOT / ".data" / log
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "config/gunicorn.conf.py",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--access-logfile",
                "/dev/null",
                "config.wsgi:application",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/healthz", timeout=1)
                return
            except OSError:
                time.sleep(0.2)
        raise SystemExit(f"gunicorn did not start; see {self.log_path}")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=20)
