"""Durable file writes, and telling a finished file from one still being written.

Agency systems and the hub's adapters share folders on disk. Two rules keep either side from
ever seeing half a file: a writer writes under a temporary name, flushes it to disk and renames
it (a rename within one folder is atomic), and a reader ignores temporary names and files that
changed a moment ago (a system that writes in place is still writing).
"""

from __future__ import annotations

import stat
from pathlib import Path

from tracking.files import fsync_folder, write_atomically

__all__ = ["fsync_folder", "is_complete", "looks_temporary", "write_atomically"]

# Names writers use while a file is incomplete: ours (.part) and common tools' (.tmp, ~, .swp).
TEMPORARY_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".swp", "~")


def looks_temporary(name: str) -> bool:
    """True for names of files still being written, and for hidden files (``.name``)."""
    lowered = name.lower()
    return name.startswith((".", "~$")) or lowered.endswith(TEMPORARY_SUFFIXES)


def is_complete(path: Path, now: float, quiet_seconds: float) -> bool:
    """Whether *path* is a regular file, not temporary by its name, and unchanged for
    *quiet_seconds* (by its modification time) at *now* (``time.time()``). A symbolic link is
    not: whoever can write the folder must not make the adapter send a file from elsewhere
    (a key, a password file) under the agency's signature."""
    if looks_temporary(path.name):
        return False
    try:
        info = path.lstat()
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and now - info.st_mtime >= quiet_seconds
