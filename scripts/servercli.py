"""The start / stop / status command line shared by scripts/devdb.py and scripts/devredis.py."""

import sys
from collections.abc import Callable


def run(*, start: Callable[[], None], stop: Callable[[], None], is_running: Callable[[], bool]) -> None:
    command = sys.argv[1] if len(sys.argv) > 1 else "status"
    if command == "start":
        start()
    elif command == "stop":
        stop()
    elif command == "status":
        running = is_running()
        print("running" if running else "stopped")
        sys.exit(0 if running else 1)
    else:
        sys.exit(f"unknown command {command!r}: use start, stop or status")
