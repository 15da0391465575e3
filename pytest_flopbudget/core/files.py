"""Writing report and baseline files so that a crash never leaves half a file behind."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write(path: Path | str, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same directory and an
    ``os.replace``: readers see the old file or the new one, never a partial one. An
    ``OSError`` names ``path`` (and the file that failed, when it is another one)."""
    path = Path(path)
    try:
        _replace_with(path, text)
    except OSError as exc:
        why = exc.strerror or str(exc)
        if exc.filename and Path(exc.filename) != path and ".tmp" not in str(exc.filename):
            why = f"{why}: {exc.filename}"
        raise OSError(exc.errno, why, str(path)) from None
    return path


def _replace_with(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        mask = os.umask(0)  # mkstemp creates 0600; give the file the usual permissions
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def append_text(path: Path, text: str) -> None:
    """Append ``text`` to ``path`` (created if missing), starting on a new line. Appending,
    not rewriting, is what a file other processes add to (GitHub's step summary) needs."""
    with path.open("ab") as fh:
        if fh.tell() > 0:
            with path.open("rb") as tail:
                tail.seek(-1, os.SEEK_END)
                if tail.read(1) != b"\n":
                    fh.write(b"\n")
        fh.write(text.encode("utf-8"))
