"""Whether a background process (embedding job, training worker) is still running."""

from __future__ import annotations

import os


def alive(pid: int | None) -> bool:
    """True while process `pid` runs. No pid (None or 0), a pid that does not exist and a zombie (a finished
    child not yet reaped) are not running; a process owned by another user (PermissionError) is."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:  # no /proc (macOS): the signal check above is all there is
        return True
