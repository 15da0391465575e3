"""Writing report and baseline files so that no crash loses a file or leaves half of one.

:func:`atomic_write` writes to a temporary file beside the target and renames it over the
target: readers see the old file or the new one, never a partial one, whatever happens
meanwhile:

* an error (disk full, read-only folder) removes the temporary file and raises one
  ``OSError`` naming the target; the old file is left as it was;
* Ctrl-C or SIGTERM during the write removes the temporary file and raises
  :class:`WriteInterrupted` (a ``KeyboardInterrupt``) naming the target and the signal;
* a writer killed outright (SIGKILL, power loss) cannot clean up: its temporary file is named
  after the process and host that wrote it (``.NAME.PID@HOST.XXXXXX.tmp``), and the next
  write into the same folder removes it once that process is gone (or after a day, for a
  writer on another host), while a live writer's file is left to it.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType

#: A temporary file older than this belongs to no live writer, whatever its name says.
STALE_AFTER_S = 24 * 3600


class WriteInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM arrived while ``filename`` was being written; it is left as it
    was and no temporary file remains."""

    def __init__(self, filename: str, signal_name: str) -> None:
        super().__init__(f"{signal_name} while writing {filename}")
        self.filename = filename
        self.signal_name = signal_name


def atomic_write(path: Path | str, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same directory and an
    ``os.replace`` (see the module docstring); a symbolic link is written through to its
    target, and stays a link. An ``OSError`` names ``path`` (and the file that failed, when
    it is another one)."""
    path = Path(path)
    try:
        # a link is written through: its target gets the text, the link stays a link
        try:
            target = path.resolve() if path.is_symlink() else path
        except RuntimeError:  # a loop of links (Python 3.11 raises RuntimeError for it)
            raise OSError(errno.ELOOP, "the symbolic links loop", str(path)) from None
        _replace_with(target, text.encode("utf-8"))
    except OSError as exc:
        raise _named(exc, path) from None
    return path


def check_writable(path: Path | str) -> None:
    """Raise an ``OSError`` naming ``path`` when no file can be written there (its folder
    cannot be made or written to, or ``path`` is a folder); makes the folder. For work that
    takes long before it writes: fail before, not after."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "it is a folder", str(path))
        if not os.access(path.parent, os.W_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path.parent))
    except OSError as exc:
        raise _named(exc, path) from None


def _named(exc: OSError, path: Path) -> OSError:
    """``exc`` as one ``OSError`` whose filename is ``path`` and whose text says why."""
    why = exc.strerror or str(exc)
    failed = Path(exc.filename) if exc.filename else None
    if failed is not None and failed != path and ".tmp" not in failed.name:
        if isinstance(exc, (FileExistsError, NotADirectoryError)) and failed in path.parents:
            why = f"{failed} is a file, not a folder"
        else:
            why = f"{why}: {failed}"
    return OSError(exc.errno, why, str(path))


def _writer() -> str:
    """This process, as written in its temporary files' names: ``PID@HOST``."""
    return f"{os.getpid()}@{re.sub(r'[^A-Za-z0-9-]', '-', socket.gethostname())}"


def _replace_with(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    with _signals_interrupt(str(path)):
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{_writer()}.",
                                   suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            mask = os.umask(0)  # mkstemp creates 0600; give the file the usual permissions
            os.umask(mask)
            os.chmod(tmp, 0o666 & ~mask)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


#: A temporary file of :func:`atomic_write`: ``.NAME.PID@HOST.XXXXXXXX.tmp``.
_TEMP = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)@(?P<host>[A-Za-z0-9-]+)\.[^.]+\.tmp")


def remove_stale_temps(path: Path) -> list[Path]:
    """Remove the temporary files that writers which are gone left in ``path``'s folder
    (of any file there, not only ``path``: a killed writer's file goes at the next write
    beside it); returns them. A file of a live writer (this host, its process running) is
    kept; one older than a day, or a temporary file of ``path`` in an older naming, goes."""
    removed = []
    host = _writer().partition("@")[2]
    with suppress(OSError):
        for tmp in path.parent.iterdir():
            name = tmp.name
            match = _TEMP.fullmatch(name)
            if match is None and not (name.startswith(f".{path.name}.")
                                      and name.endswith(".tmp")):
                continue
            try:
                age = time.time() - tmp.stat().st_mtime
            except OSError:
                continue
            live = age < STALE_AFTER_S and (match is None or match["host"] != host
                                            or _running(int(match["pid"])))
            if not live:
                with suppress(OSError):
                    tmp.unlink()
                    removed.append(tmp)
    return removed


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, and belongs to someone else
        return True
    return True


@contextmanager
def _signals_interrupt(filename: str) -> Iterator[None]:
    """While the body runs, Ctrl-C and SIGTERM raise :class:`WriteInterrupted` (so the
    temporary file is removed) instead of killing the process outright; handlers someone
    else installed are left alone. Signal handlers belong to the main thread: elsewhere this
    does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    defaults = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise WriteInterrupted(filename, signal.Signals(signum).name)

    previous = {}
    for signum, default in defaults.items():
        if signal.getsignal(signum) is default:
            previous[signum] = signal.signal(signum, interrupt)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


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


def same_file(a: Path | str, b: Path | str) -> bool:
    """True when ``a`` and ``b`` name one file: the same path once symbolic links, ``..``
    and case (where the system ignores it) are resolved, or hard links to one file."""
    if os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b)):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # either does not exist (yet)
        return False
