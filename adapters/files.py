"""Durable file writes, and telling a finished file from one still being written.

Agency systems and the hub's adapters share folders on disk. Two rules keep either side from
ever seeing half a file: a writer writes under a temporary name, flushes it to disk and renames
it (a rename within one folder is atomic), and a reader ignores temporary names and files that
changed a moment ago (a system that writes in place is still writing).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

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


def _safe_name(name: str) -> None:
    if name in ("", ".", "..") or Path(name).name != name or "\\" in name:
        raise ValueError(f"refusing to write an unsafe file name {name!r}")


def fsync_folder(folder: Path) -> None:
    """Make a rename or a new entry in *folder* durable (a no-op where folders cannot be
    opened, as on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomically(folder: Path, name: str, data: bytes, *, durable: bool = True) -> Path:
    """Write *folder*/*name* through a temporary file in *folder*, never anywhere else; with
    *durable*, the bytes and the rename are on disk when this returns."""
    _safe_name(name)
    target = folder / name
    temporary = folder / f".lienthong-{secrets.token_hex(8)}.part"
    # O_EXCL: never follow or reuse something already there; mode 0o666 less the umask.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(temporary, flags, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    if durable:
        fsync_folder(folder)
    return target
