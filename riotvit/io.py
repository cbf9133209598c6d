"""Write outputs under a temporary name and rename them into place when complete.

A failed or interrupted stage therefore never leaves something that looks finished.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from riotvit.errors import OutputExistsError

PARTIAL_SUFFIX = ".partial"


def partial_path(final: Path) -> Path:
    """The temporary sibling of ``final`` (``name.partial``)."""
    return final.with_name(final.name + PARTIAL_SUFFIX)


def refuse_existing(final: Path, overwrite: bool, what: str = "output") -> None:
    """Raise a clear error if ``final`` exists and ``overwrite`` is False."""
    if final.exists() and not overwrite:
        raise OutputExistsError(
            f"{final}: {what} already exists; pass --overwrite to replace it or choose another --out"
        )


def publish(tmp: Path, final: Path) -> None:
    """Move ``tmp`` onto ``final``, replacing any previous file or folder."""
    if final.is_dir() and not final.is_symlink():
        trash = final.with_name(final.name + ".old")
        if trash.exists():
            shutil.rmtree(trash)
        final.rename(trash)
        tmp.rename(final)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, final)


@contextlib.contextmanager
def atomic_file(final: str | Path, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``final``; rename onto ``final`` on success."""
    final = Path(final)
    refuse_existing(final, overwrite)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp{os.getpid()}")
    try:
        yield tmp
        if tmp.exists():  # temp files may be created 0600 by libraries; outputs follow the umask
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        publish(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_dir(final: str | Path, overwrite: bool = False, resume: bool = False) -> Iterator[Path]:
    """Yield ``final.partial/`` to fill; rename it onto ``final`` when the block succeeds.

    Args:
        final: the folder the caller wants.
        overwrite: replace an existing ``final``.
        resume: keep an existing ``.partial`` folder (the caller resumes from it); otherwise it
            is cleared first.
    """
    final = Path(final)
    refuse_existing(final, overwrite)
    tmp = partial_path(final)
    if tmp.exists() and not resume:
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    yield tmp
    publish(tmp, final)
