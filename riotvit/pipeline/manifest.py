"""The run manifest: what each stage ran on, keyed by content hashes, so unchanged stages skip.

A stage's key is the SHA-256 of its name, its config and the content hashes of its inputs (files
or folders, upstream outputs included). A stage is skipped when the manifest records the same key
and its outputs are all present. File hashes are cached by (size, mtime) so a rerun does not
re-read unchanged gigabytes.

The manifest also records which paths of the run folder each stage owns and the files it left
there: a stage replaces its outputs, so before it runs, anything in them that the pipeline did
not write (a user's file) stops the run with an error naming it (:meth:`Manifest.check_owned`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from pathlib import Path
from typing import Any

from riotvit import __version__
from riotvit.errors import OutputExistsError
from riotvit.io import file_sha256, json_sha256, write_json

MANIFEST = "manifest.json"


class Manifest:
    def __init__(self, run: Path):
        self.path = run / MANIFEST
        self.data: dict[str, Any] = {"riotvit_version": __version__, "stages": {}, "hash_cache": {}}
        if self.path.is_file():
            with contextlib.suppress(json.JSONDecodeError):  # a damaged manifest only costs a rerun
                self.data.update(json.loads(self.path.read_text(encoding="utf-8")))

    # -- hashing -----------------------------------------------------------------------------
    def file_hash(self, p: Path) -> str:
        st = p.stat()
        cache = self.data["hash_cache"]
        hit = cache.get(str(p.resolve()))
        if hit and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
            return hit[2]
        digest = file_sha256(p)
        cache[str(p.resolve())] = [st.st_size, st.st_mtime_ns, digest]
        return digest

    def content_hash(self, p: Path) -> str:
        """SHA-256 of a file, or of a folder's files (relative names and contents)."""
        if p.is_file():
            return self.file_hash(p)
        if not p.is_dir():
            return "missing"
        h = hashlib.sha256()
        for f in sorted(x for x in p.rglob("*") if x.is_file()):
            h.update(f.relative_to(p).as_posix().encode())
            h.update(self.file_hash(f).encode())
        return h.hexdigest()

    def key(self, stage: str, config: Any, inputs: dict[str, Path]) -> tuple[str, dict[str, str]]:
        hashes = {name: self.content_hash(Path(p)) for name, p in sorted(inputs.items())}
        return json_sha256({"stage": stage, "config": config, "inputs": hashes}), hashes

    # -- records -----------------------------------------------------------------------------
    def fresh(self, stage: str, key: str, outputs: list[Path]) -> bool:
        rec = self.data["stages"].get(stage)
        return bool(rec) and rec.get("key") == key and all(Path(o).exists() for o in outputs)

    def record(self, stage: str, key: str, config: Any, inputs: dict[str, str], outputs: list[Path], seconds: float,
               summary: dict, owns: list[Path] | None = None) -> None:
        self.data["stages"][stage] = {
            "key": key, "config": config, "inputs": inputs, "outputs": [str(o) for o in outputs],
            "seconds": round(seconds, 2), "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "summary": summary,
            "riotvit_version": __version__, "files": self._listing(owns if owns is not None else outputs),
        }
        self.save()

    # -- ownership ---------------------------------------------------------------------------
    def _rel(self, p: Path) -> str:
        return Path(p).relative_to(self.path.parent).as_posix()

    def _listing(self, owns: list[Path]) -> dict[str, list[str]]:
        """Per owned path (relative to the run folder): the files under it, relative names."""
        out = {}
        for o in owns:
            o = Path(o)
            files = [o] if o.is_file() else sorted(f for f in o.rglob("*") if f.is_file()) if o.is_dir() else []
            out[self._rel(o)] = [self._rel(f) for f in files]
        return out

    def pending(self, stage: str, owns: list[Path]) -> None:
        """Mark ``stage`` as running: its owned paths are the pipeline's even if it is killed before :meth:`record`."""
        self.data["stages"][stage] = {"pending": True, "outputs": [str(o) for o in owns],
                                      "files": {self._rel(o): None for o in owns}}
        self.save()

    def check_owned(self, owns: list[Path]) -> None:
        """Refuse to run a stage whose output paths hold something this pipeline did not write.

        Raises:
            OutputExistsError: naming the first such file or folder.
        """
        recorded: dict[str, list[str] | None] = {}
        for rec in self.data["stages"].values():
            if "files" in rec:
                recorded.update(rec["files"])
            else:  # a manifest of riotvit before ownership records: its outputs are trusted as a whole
                for o in rec.get("outputs", []):
                    with contextlib.suppress(ValueError):
                        recorded.setdefault(self._rel(Path(o)), None)
        for o in owns:
            o = Path(o)
            if not o.exists() and not o.is_symlink():
                continue
            rel = self._rel(o)
            if not o.is_dir() or o.is_symlink():
                if rel not in recorded:
                    self._refuse(o)
                continue
            known = recorded.get(rel, [])  # a folder the pipeline never wrote: any file in it is someone else's
            if known is None:
                continue
            for f in sorted(o.rglob("*")):
                if (f.is_file() or f.is_symlink()) and self._rel(f) not in known:
                    self._refuse(f)

    def _refuse(self, p: Path) -> None:
        raise OutputExistsError(
            f"{p}: not written by this pipeline (not in {self.path}), and the stage writing "
            f"{p.relative_to(self.path.parent).parts[0]} would replace it; riotvit run never deletes files it did not "
            "create — move it out of the run folder or choose another --out"
        )

    def forget(self, stage: str) -> None:
        self.data["stages"].pop(stage, None)

    def save(self) -> None:
        write_json(self.path, self.data)
