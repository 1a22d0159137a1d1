"""Small job helpers: outputs appear whole (with the umask's permissions) or not at all; a job's
log, errors and warnings reach the user."""

from __future__ import annotations

import contextlib
import contextvars
import glob
import hashlib
import json
import os
import secrets
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO


def _new_sibling(path: Path, directory: bool) -> Path:
    """Create a uniquely named hidden sibling of ``path`` as a plain ``open()`` or ``mkdir()``
    would, so that the umask decides its permissions (``mkstemp``/``mkdtemp`` force 0600/0700,
    which hides results from the rest of a group on a shared file system)."""
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        try:
            if directory:
                tmp.mkdir(mode=0o777)
            else:
                os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")


def _remove_leftovers(path: Path) -> None:
    """Delete the temporary siblings of ``path`` that a killed earlier attempt left behind
    (at SlimPajama scale, gigabytes); one job writes a path at a time, so none is live."""
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*"):
        suffix = stale.name[len(path.name) + 2 :].removeprefix("old-")
        if len(suffix) == 8 and all(c in "0123456789abcdef" for c in suffix):
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; move it into place only if the block succeeds.

    A killed or failing job therefore never leaves a half-written parquet, ``.npy`` or model
    directory that a later run would take for a finished one. The output gets the permissions
    of any file or directory the job creates (0666/0777 less the umask).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(path)
    tmp = _new_sibling(path, directory)
    try:
        yield tmp
        if directory and path.exists():
            # A directory cannot replace a non-empty one: move the old one aside first and
            # delete it only once the new one is in place, so a kill leaves one of the two.
            old = path.with_name(f".{path.name}.old-{secrets.token_hex(4)}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def write_json(path: str | os.PathLike, obj) -> None:
    """Write ``obj`` as indented, key-sorted JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# The console of the job that logged() runs, for warn(); None outside one.
_console: contextvars.ContextVar[TextIO | None] = contextvars.ContextVar("console", default=None)


def warn(message: str) -> None:
    """Tell the user about a result to doubt: in the job's log and, under :func:`logged`, on
    the console as well, where Snakemake's output is read."""
    print(f"warning: {message}", file=sys.stderr, flush=True)
    console = _console.get()
    if console is not None:
        print(f"warning: {message}", file=console, flush=True)


@contextlib.contextmanager
def logged(log_path: str | os.PathLike, threads: int | None = None) -> Iterator[None]:
    """Send a job's output to its log file; repeat an error's one-line message (and each
    :func:`warn`) on the console, where the user looks first, and keep the traceback in the log.

    ``threads`` caps torch's CPU threads to the job's share, so parallel jobs do not
    oversubscribe the cores.
    """
    import traceback

    if threads is not None:
        import torch

        torch.set_num_threads(threads)

    console = sys.stderr
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    token = _console.set(console)
    with (
        open(log_path, "w", buffering=1) as log,
        contextlib.redirect_stdout(log),
        contextlib.redirect_stderr(log),
    ):
        try:
            yield
        except Exception as err:
            traceback.print_exc()
            print(f"error: {err}", file=console)
            raise
        finally:
            _console.reset(token)
