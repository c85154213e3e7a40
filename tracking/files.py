"""Writing files so that a crash never leaves a half-written one under the final name."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def write_atomically(folder: Path, name: str, data: bytes) -> Path:
    """Write *folder*/*name* through a temporary file in *folder*, never anywhere else: the data
    is fsynced before the rename and the folder after it, so once this returns the file is
    complete on disk under its name, and before that the name holds the old file or nothing."""
    if name in ("", ".", "..") or Path(name).name != name or "\\" in name:
        raise ValueError(f"refusing to write an unsafe file name {name!r}")
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
    _sync_folder(folder)
    return target


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (where the platform lets a folder be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
