"""Typed metadata of riotvit's artifacts: one pydantic model per file, read and written the same way.

Each artifact (tile set, samples table, model bundle, prediction folder) records what it is and
where it came from in one JSON document: ``tileset.json``, the samples table's Parquet metadata,
``bundle.json`` and ``run.json``. Their models derive from :class:`ArtifactMeta`: every field has
a description (``docs/formats.md`` is generated from them, see :mod:`riotvit.formats`), unknown
keys are errors, and the JSON written keeps the key order of the model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from riotvit import __version__
from riotvit.errors import RiotvitError
from riotvit.io import dumps, write_json

A = TypeVar("A", bound="ArtifactMeta")


class MetaModel(BaseModel):
    """Base of every metadata model and sub-model: all keys modelled, dict-style reads allowed.

    ``meta["key"]`` is the same as ``meta.key``: a read-only view kept for code written against
    the JSON dicts (tests, notebooks, benchmarks). New code uses attributes.
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    def __getitem__(self, key: str) -> Any:
        if key not in type(self).model_fields:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        """``meta.get("key", default)``, as on the JSON dict."""
        return getattr(self, key) if key in type(self).model_fields else default


class ArtifactMeta(MetaModel):
    """Base of the top-level metadata documents: a format name, a format version and the writer.

    Subclasses set ``FORMAT`` and ``FORMAT_VERSION``, the error class raised when a document
    cannot be used (``ERROR``) and the command that makes the artifact (``MAKER``).
    """

    FORMAT: ClassVar[str] = ""
    FORMAT_VERSION: ClassVar[int] = 1
    ERROR: ClassVar[type[RiotvitError]] = RiotvitError
    MAKER: ClassVar[str] = "riotvit"
    OMIT_IF_NONE: ClassVar[frozenset[str]] = frozenset()

    format: str = Field(description="What the document describes; always the same string for this artifact.")
    format_version: int = Field(description="Version of this document's layout; readers refuse newer versions.")
    riotvit_version: str = Field(description="The riotvit version that wrote the artifact.")

    @classmethod
    def build(cls: type[A], **values: Any) -> A:
        """A document from freshly computed values (numpy scalars allowed), with format and version filled in.

        Values pass through the JSON encoder first, so the document holds exactly what is written.
        """
        head = {"format": cls.FORMAT, "format_version": cls.FORMAT_VERSION, "riotvit_version": __version__}
        return cls.model_validate(json.loads(dumps({**head, **values})))

    @classmethod
    def from_dict(cls: type[A], data: Any, source: str | Path) -> A:
        """Validate a parsed document.

        Raises:
            ERROR: not this artifact, written by a newer riotvit, or not of the expected shape.
        """
        if not isinstance(data, dict) or data.get("format") != cls.FORMAT:
            got = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise cls.ERROR(f"{source}: not a {cls.FORMAT} document (format {got!r}); make it with {cls.MAKER}")
        version = data.get("format_version")
        if not isinstance(version, int) or version > cls.FORMAT_VERSION:
            raise cls.ERROR(f"{source}: {cls.FORMAT} format v{version} is newer than this riotvit {__version__} "
                            f"reads (v{cls.FORMAT_VERSION}); upgrade riotvit or re-run {cls.MAKER}")
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            first = e.errors()[0]
            loc = ".".join(str(x) for x in first["loc"])
            raise cls.ERROR(f"{source}: '{loc}': {first['msg']}; the file is damaged or was edited by hand, "
                            f"re-run {cls.MAKER}") from None

    @classmethod
    def read_json(cls: type[A], path: Path) -> A:
        """Read and validate a JSON file (see :meth:`from_dict`)."""
        try:
            data = json.loads(Path(path).read_text())
        except json.JSONDecodeError as e:
            raise cls.ERROR(f"{path}: not valid JSON ({e}); re-run {cls.MAKER}") from None
        return cls.from_dict(data, path)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document, in the models' key order (optional parts left out when absent)."""
        return self.model_dump(exclude={k for k in self.OMIT_IF_NONE if getattr(self, k) is None})

    def to_json(self) -> str:
        """The indented JSON text, as written."""
        return dumps(self.to_dict())

    def write(self, path: Path) -> Path:
        """Write the document as indented JSON, atomically."""
        return write_json(path, self.to_dict())
