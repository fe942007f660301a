"""`make dev`'s process manager (scripts/supervisor.py) with real child processes: a killed program is restarted
with a backoff and a log line while the others keep running, one that keeps dying at start ends the run, and a stop
leaves no process behind. The slow test does it with the real Celery worker of scripts/dev.py."""

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import dev  # noqa: E402 - scripts/ is not a package; its modules import each other by name
from supervisor import Program, Supervisor  # noqa: E402

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); its state in /proc says it is gone.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


class Running:
    """Runs a supervisor in a thread; the context exit stops it and waits for `run()` to return."""

    def __init__(self, supervisor: Supervisor):
        self.supervisor = supervisor
        self.lines: list[str] = []
        supervisor.log = self.lines.append
        self.code: int | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        self.code = self.supervisor.run(poll_interval=0.1)

    def __enter__(self):
        self.thread.start()
        wait_for(lambda: all(p.pids for p in self.supervisor.programs), timeout=30, what="programs started")
        return self

    def __exit__(self, *exc):
        self.supervisor.stop()
        self.thread.join(timeout=60)
        assert not self.thread.is_alive(), "the supervisor did not stop"


def test_a_killed_program_is_restarted_after_its_backoff_and_the_others_keep_running():
    worker, web = Program("worker", SLEEPER), Program("web", SLEEPER)
    supervisor = Supervisor([worker, web], cwd=ROOT, backoff_base=0.5, stable_after=30)
    with Running(supervisor) as running:
        first, web_pid = worker.pids[0], web.pids[0]
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: len(worker.pids) == 2 and alive(worker.pids[1]), timeout=30, what="a new worker")
        assert not alive(first) and alive(web_pid) and web.pids == [web_pid]
        assert any(f"worker exited with code -{signal.SIGKILL}" in line for line in running.lines), (
            running.lines
        )
        assert any("restarting it in 0.5 s" in line for line in running.lines), running.lines
        # The second quick death waits twice as long: a crash loop does not spin.
        died = time.monotonic()
        os.kill(worker.pids[1], signal.SIGKILL)
        wait_for(lambda: len(worker.pids) == 3 and alive(worker.pids[2]), timeout=30, what="a third worker")
        assert time.monotonic() - died >= 1.0
        assert any("restarting it in 1 s" in line for line in running.lines), running.lines
        pids = worker.pids + web.pids
    assert running.code == 0
    assert not any(alive(pid) for pid in pids)


def test_a_program_that_keeps_dying_at_start_stops_everything():
    broken = Program("beat", [sys.executable, "-c", "raise SystemExit(3)"])
    web = Program("web", SLEEPER)
    supervisor = Supervisor([broken, web], cwd=ROOT, backoff_base=0.05, max_quick_exits=3)
    with Running(supervisor) as running:
        running.thread.join(timeout=60)
        assert running.code == 1
    assert len(broken.pids) == 3
    assert not alive(web.pids[0])
    assert "giving up and stopping everything" in running.lines[-1]
    assert "exited with code 3" in running.lines[-1]


def test_a_program_that_ignores_sigterm_is_killed_at_the_stop_timeout():
    stubborn = Program(
        "worker",
        [
            sys.executable,
            "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)",
        ],
    )
    supervisor = Supervisor([stubborn], cwd=ROOT, stop_timeout=1)
    with Running(supervisor) as running:
        # The program must ignore SIGTERM before the stop, or SIGTERM would end it at once.
        wait_for(
            lambda: (
                int(
                    next(
                        line.split()[1]
                        for line in Path(f"/proc/{stubborn.pids[0]}/status").read_text().splitlines()
                        if line.startswith("SigIgn")
                    ),
                    16,
                )
                & (1 << (signal.SIGTERM - 1))
            ),
            timeout=30,
            what="the SIGTERM handler",
        )
    assert not alive(stubborn.pids[0])
    assert any("did not stop within 1 s; killing it" in line for line in running.lines), running.lines


@pytest.mark.slow
def test_make_devs_real_worker_is_restarted_after_a_sigkill(tmp_path):
    # The worker of scripts/dev.py on the tests' Redis (REDIS_URL, tests/envplugin.py) and a queue no test uses; no
    # web server, database or Redis is started or stopped here, and no beat, whose tasks would reach other tests.
    env = {
        **os.environ,
        "CELERY_QUEUES": f"supervisor-test-{os.getpid()}",
        "MINDS_DEV_RUN": "1",
    }
    worker = next(p for p in dev.programs(port="0", queues=env["CELERY_QUEUES"]) if p.name == "worker")
    log = tmp_path / "dev.log"
    with open(log, "ab") as output:
        supervisor = Supervisor([worker], cwd=ROOT, env=env, output=output, backoff_base=0.5)
        with Running(supervisor) as running:
            wait_for(lambda: log.read_bytes().count(b" ready.") >= 1, timeout=180, what="the worker ready")
            first = worker.pids[0]
            os.killpg(first, signal.SIGKILL)  # the worker and its pool, as the OOM killer or a crash would
            wait_for(lambda: len(worker.pids) == 2, timeout=60, what="the worker restarted")
            wait_for(
                lambda: log.read_bytes().count(b" ready.") >= 2, timeout=180, what="the new worker ready"
            )
            assert alive(worker.pids[1]) and not alive(first)
            assert any("worker exited with code -9" in line for line in running.lines), running.lines
            pids = list(worker.pids)
    assert not any(alive(pid) for pid in pids)
