"""Writing files so that a crash never leaves a half-written one under the final name.

The one way the project writes a file others rely on (archives, evidence bundles, attachments,
what adapters hand to agency systems): under a temporary name in the same folder, flushed,
then renamed (a rename within one folder is atomic).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def _safe_name(name: str) -> None:
    if name in ("", ".", "..") or Path(name).name != name or "\\" in name:
        raise ValueError(f"refusing to write an unsafe file name {name!r}")


def write_atomically(folder: Path, name: str, data: bytes, *, durable: bool = True) -> Path:
    """Write *folder*/*name* through a temporary file in *folder*, never anywhere else: the data
    is fsynced before the rename, so the name holds the old file or the whole new one. With
    *durable* the folder is fsynced after the rename too, so once this returns the file is on
    disk under its name even across a power cut."""
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


def fsync_folder(folder: Path) -> None:
    """Make a rename or a new entry in *folder* durable (a no-op where folders cannot be
    opened, as on Windows)."""
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
