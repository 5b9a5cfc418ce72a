"""Saving the startup configuration so that a crash never leaves half a file.

`write memory` writes a temporary file in the same directory, fsyncs it,
renames it over the old file (atomic on POSIX within one file system) and
fsyncs the directory so the rename itself survives a power cut. Until the
rename, the previous file is untouched; after it, the new one is complete.

When the startup file is a symbolic link (say, to a file under version
control or on a shared volume), the link stays and its final target is
replaced, the same way, in the target's directory.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

#: The file holds (obfuscated, reversible) pre-shared keys: owner only.
STARTUP_FILE_MODE = 0o600


def save_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Replace `path` with `text` atomically; on any error the old file stays."""
    target = Path(os.path.realpath(path))
    directory = target.parent
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as tmp:
            tmp.write(text)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.chmod(tmp_name, STARTUP_FILE_MODE)
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
