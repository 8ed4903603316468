"""Run a program we cannot change so that it, and every process it forks, ends with us.

    python -m callcenter.reaper -- kamailio -DD -E -f kamailio.cfg ...

The program runs in a process group of its own. The group is ended (SIGTERM, then SIGKILL after
`GRACE_SECONDS`) when this process gets SIGTERM/SIGINT/SIGHUP or its own parent dies, and the
leftovers of the group are killed when the program's main process exits (its forked children would
otherwise keep its sockets). The exit status is the program's (128 + signal when it was killed).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

from callcenter.lifeline import CHECK_SECONDS, group_members

GRACE_SECONDS = 3.0


def end_group(child: subprocess.Popen[bytes], grace: float = GRACE_SECONDS) -> None:
    """SIGTERM to every process of the child's group, SIGKILL to what is left after `grace` seconds."""
    pgid = child.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        child.poll()  # reap the main process as soon as it exits
        if not group_members(pgid):
            return
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def main(argv: list[str]) -> int:
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        print("usage: python -m callcenter.reaper -- PROGRAM [ARGS...]", file=sys.stderr)
        return 2
    command = argv[argv.index("--") + 1 :]
    parent = os.getppid()
    stop: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda number, _frame: stop.append(number))
    child = subprocess.Popen(command, start_new_session=True)  # its own group: pgid == child.pid
    while True:
        code = child.poll()
        if code is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)  # what it forked and left behind
            return code if code >= 0 else 128 - code
        if stop or os.getppid() != parent:
            end_group(child)
            child.wait()
            return 0
        time.sleep(CHECK_SECONDS / 2)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
