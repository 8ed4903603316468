"""Processes that end with the process that started them.

`kill -9` of `hotline serve` gives its children no chance to be told. A child of ours watches its
parent instead: `follow_parent()` notices within a quarter of a second that it was re-parented (its
parent died) and ends the process. Kamailio is not ours to change: it runs under `callcenter.reaper`,
which does the watching and takes Kamailio's whole process group with it (Kamailio forks its workers
into that group, and they would otherwise keep the SIP port).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

CHECK_SECONDS = 0.25


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name: [state, ppid, pgrp, …]; None if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent to read its status does not count)."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def group_members(pgid: int) -> set[int]:
    """The running processes of a process group (zombies do not count)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and fields[0] != "Z" and int(fields[2]) == pgid:
                found.add(int(entry.name))
    return found


def follow_parent(
    on_orphaned: Callable[[], None] | None = None, every: float = CHECK_SECONDS
) -> threading.Thread:
    """A daemon thread that calls `on_orphaned` (default: exit at once) when the parent process dies."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        if on_orphaned is not None:
            on_orphaned()
        else:
            os._exit(3)

    thread = threading.Thread(target=watch, name="follow-parent", daemon=True)
    thread.start()
    return thread
