"""The process manager of `make dev`: keeps the web server, the Celery worker and beat running.

A program that exits is started again after a backoff (1 s, doubled up to 30 s; reset once it has run 30 s), with
a log line on stderr; the web server is restarted like the others, so a crash of one process never takes the
database or the other processes down. A program that keeps dying at start (5 quick exits in a row: a port in use,
a broken setting) is a configuration error a restart cannot fix: then everything is stopped and `run()` returns 1.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Program:
    name: str
    command: list[str]
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    quick_exits: int = 0  # exits in a row that came before `stable_after`
    restart_at: float | None = None
    restarts: int = 0
    pids: list[int] = field(default_factory=list)  # every pid it had, newest last (tests read it)


class Supervisor:
    def __init__(
        self,
        programs: list[Program],
        *,
        cwd: Path,
        env: dict | None = None,
        backoff_base: float = 1.0,
        backoff_max: float = 30.0,
        stable_after: float = 30.0,
        max_quick_exits: int = 5,
        stop_timeout: float = 20.0,
        log: Callable[[str], None] | None = None,
        output=None,
    ):
        self.programs = programs
        self.cwd = cwd
        self.env = env
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.stable_after = stable_after
        self.max_quick_exits = max_quick_exits
        self.stop_timeout = stop_timeout
        self.log = log or (lambda line: print(f"supervisor: {line}", file=sys.stderr, flush=True))
        self.output = output  # where the programs write (a file); None: this process's stdout and stderr
        self._stopping = threading.Event()

    def _start(self, program: Program) -> None:
        # Own process group: Ctrl-C reaches only the supervisor, and a program is stopped with all its children.
        program.proc = subprocess.Popen(
            program.command,
            cwd=self.cwd,
            env=self.env,
            stdout=self.output,
            stderr=subprocess.STDOUT if self.output else None,
            start_new_session=True,
        )
        program.started_at = time.monotonic()
        program.restart_at = None
        program.pids.append(program.proc.pid)

    @staticmethod
    def _signal_group(program: Program, sig: int) -> None:
        try:
            os.killpg(program.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _on_exit(self, program: Program, now: float) -> bool:
        """Schedules the restart of a program that exited; False when it keeps dying and the run must end."""
        code = program.proc.returncode
        ran = now - program.started_at
        # A SIGKILLed Celery worker leaves its pool processes behind in its group: clear them before a restart.
        self._signal_group(program, signal.SIGKILL)
        program.quick_exits = program.quick_exits + 1 if ran < self.stable_after else 1
        if program.quick_exits >= self.max_quick_exits:
            self.log(
                f"{program.name} exited with code {code} {program.quick_exits} times in a row within "
                f"{self.stable_after:g} s of starting; giving up and stopping everything"
            )
            return False
        delay = min(self.backoff_base * 2 ** (program.quick_exits - 1), self.backoff_max)
        program.restart_at = now + delay
        self.log(f"{program.name} exited with code {code} after {ran:.1f} s; restarting it in {delay:g} s")
        return True

    def run(self, poll_interval: float = 0.5) -> int:
        """Starts every program and keeps them running until `stop()`; 0 after a stop, 1 after giving up."""
        for program in self.programs:
            self._start(program)
        code = 0
        while not self._stopping.is_set():
            now = time.monotonic()
            for program in self.programs:
                if program.restart_at is not None:
                    if now >= program.restart_at:
                        program.restarts += 1
                        self._start(program)
                        self.log(
                            f"{program.name} restarted (pid {program.proc.pid}, restart {program.restarts})"
                        )
                elif program.proc.poll() is not None and not self._on_exit(program, now):
                    code = 1
                    self._stopping.set()
                    break
            self._stopping.wait(poll_interval)
        self._stop_all()
        return code

    def stop(self) -> None:
        """Asks `run()` to stop every program and return; safe from a signal handler or another thread."""
        self._stopping.set()

    def _stop_all(self) -> None:
        running = [p for p in self.programs if p.proc is not None and p.proc.poll() is None]
        for program in running:
            self._signal_group(program, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for program in running:
            try:
                program.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.log(f"{program.name} did not stop within {self.stop_timeout:g} s; killing it")
                program.proc.kill()
                program.proc.wait()
        for program in self.programs:
            if program.proc is not None:
                self._signal_group(program, signal.SIGKILL)  # whatever a program left in its group
