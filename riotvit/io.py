"""Shared I/O helpers: hashing, JSON, and outputs written under a temporary name.

Every artifact is written under a temporary name and renamed into place when complete, so a
failed or interrupted stage never leaves something that looks finished. This module is the one
place for: SHA-256 of files and of JSON payloads (:func:`file_sha256`, :func:`json_sha256`),
JSON encoding of numpy/paths/dates (:func:`to_jsonable`, :func:`write_json`, always atomic), and
the temporary-name helpers (:func:`atomic_file`, :func:`atomic_dir`, :func:`partial_path`,
:func:`refuse_existing`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from riotvit.errors import OutputExistsError

PARTIAL_SUFFIX = ".partial"


def file_sha256(path: str | Path, chunk: int = 1 << 22) -> str:
    """SHA-256 of a file's bytes, streamed (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def json_sha256(payload: Any, length: int | None = None) -> str:
    """SHA-256 of a JSON payload with sorted keys (hex, optionally cut to ``length``): a signature."""
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=to_jsonable).encode()).hexdigest()
    return digest[:length] if length else digest


def to_jsonable(o: Any) -> Any:
    """``json.dumps(default=...)`` for numpy scalars/arrays (non-finite floats become null), paths and dates."""
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o) if np.isfinite(o) else None
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (dt.date, dt.datetime)):
        return o.isoformat()
    return str(o)


def dumps(obj: Any) -> str:
    """Indented JSON with the encoder above and a final newline."""
    return json.dumps(obj, indent=2, default=to_jsonable) + "\n"


def write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically (temporary name, then rename)."""
    path = Path(path)
    with atomic_file(path) as tmp:
        tmp.write_text(dumps(obj), encoding="utf-8")
    return path


def relative_to_artifact(path: str | Path, base: str | Path) -> str:
    """``path`` as an artifact records it: relative to the artifact's folder ``base``, POSIX separators.

    The one convention of every path in riotvit's metadata (tile set, samples table, bundle,
    ``run.json``): relative to the folder holding the metadata, so a folder of artifacts moved
    together, or read from another directory, still finds its inputs. Resolve with
    :func:`resolve_recorded`.
    """
    return Path(os.path.relpath(os.path.abspath(path), os.path.abspath(base))).as_posix()


def resolve_recorded(recorded: str | Path, base: str | Path) -> Path:
    """A path recorded in an artifact's metadata, resolved against the artifact's folder ``base``.

    Absolute paths stay as they are. Metadata written by riotvit before artifact-relative paths
    held paths relative to the directory the stage ran in: when the artifact-relative reading
    does not exist and that one does, it is used.
    """
    p = Path(recorded)
    if p.is_absolute():
        return p
    cand = Path(os.path.normpath(Path(base) / p))  # bundle/../tiles reads as tiles in messages
    return p if not cand.exists() and p.exists() else cand


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
        # a hidden name of riotvit's own (never a user's "NAME.old" folder), gone once the new one is in place
        trash = final.with_name(f".{final.name}.riotvit-old-{os.getpid()}")
        if trash.exists():
            shutil.rmtree(trash)
        final.rename(trash)
        tmp.rename(final)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, final)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (another user's) or cannot tell: keep its file
    return True


def remove_stale_temporaries(final: Path) -> list[Path]:
    """Delete temporaries of ``final`` left by killed riotvit runs; return them.

    Only riotvit's own pattern, ``.NAME.tmp<pid>`` next to ``final``, and only when no process
    with that pid is alive: a concurrent run's temporary file is left alone.
    """
    prefix = f".{final.name}.tmp"
    removed = []
    if not final.parent.is_dir():
        return removed
    for p in final.parent.iterdir():
        pid = p.name[len(prefix):]
        if p.name.startswith(prefix) and pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p)
    return removed


@contextlib.contextmanager
def atomic_file(final: str | Path, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``final``; rename onto ``final`` on success.

    Temporaries of ``final`` left by killed runs are removed first (:func:`remove_stale_temporaries`).
    """
    final = Path(final)
    refuse_existing(final, overwrite)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(final)
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
        resume: keep an existing ``.partial`` folder (the caller resumes from it) and keep it
            when the block fails (so the next run resumes) unless it holds no file; otherwise
            it is cleared first and removed when the block fails.
    """
    final = Path(final)
    refuse_existing(final, overwrite)
    tmp = partial_path(final)
    if tmp.exists() and not made_by_riotvit(tmp):
        raise OutputExistsError(f"{tmp}: a folder riotvit did not make is in the way of its working folder; "
                                "move or rename it, or choose another --out")
    if tmp.exists() and not resume:
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / PARTIAL_MARKER).touch()
    try:
        yield tmp
    except BaseException:
        if not resume or not any(p.is_file() and p.name != PARTIAL_MARKER for p in tmp.rglob("*")):
            shutil.rmtree(tmp, ignore_errors=True)  # nothing to resume from: leave no empty folder behind
        raise
    (tmp / PARTIAL_MARKER).unlink(missing_ok=True)
    publish(tmp, final)


PARTIAL_MARKER = ".riotvit-partial"
"""The file that marks a ``NAME.partial`` folder as riotvit's working folder (removed on publishing)."""


def made_by_riotvit(tmp: Path) -> bool:
    """A ``.partial`` folder riotvit may clear or resume: it holds the marker, or a resumable run's
    ``state.json`` (runs from before the marker), or nothing at all."""
    return tmp.is_dir() and ((tmp / PARTIAL_MARKER).exists() or (tmp / "state.json").exists()
                             or not any(tmp.iterdir()))
