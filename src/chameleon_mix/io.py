"""Small file helpers: outputs appear whole or not at all."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; move it into place only if the block succeeds.

    A killed or failing job therefore never leaves a half-written parquet, ``.npy`` or model
    directory that a later run would take for a finished one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        os.close(fd)
        tmp = Path(name)
    try:
        yield tmp
        if directory and path.exists():
            shutil.rmtree(path)
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


@contextlib.contextmanager
def logged(log_path: str | os.PathLike, threads: int | None = None) -> Iterator[None]:
    """Send a job's output to its log file; repeat an error's one-line message on the console,
    where the user looks first, and keep the traceback in the log.

    ``threads`` caps torch's CPU threads to the job's share, so parallel jobs do not
    oversubscribe the cores.
    """
    import sys
    import traceback

    if threads is not None:
        import torch

        torch.set_num_threads(threads)

    console = sys.stderr
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
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
