"""The run manifest: what each stage ran on, keyed by content hashes, so unchanged stages skip.

A stage's key is the SHA-256 of its name, its config and the content hashes of its inputs (files
or folders, upstream outputs included). A stage is skipped when the manifest records the same key
and its outputs are all present. File hashes are cached by (size, mtime) so a rerun does not
re-read unchanged gigabytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from pathlib import Path
from typing import Any

from riotvit import __version__
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
               summary: dict) -> None:
        self.data["stages"][stage] = {
            "key": key, "config": config, "inputs": inputs, "outputs": [str(o) for o in outputs],
            "seconds": round(seconds, 2), "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "summary": summary,
            "riotvit_version": __version__,
        }
        self.save()

    def forget(self, stage: str) -> None:
        self.data["stages"].pop(stage, None)

    def save(self) -> None:
        write_json(self.path, self.data)
