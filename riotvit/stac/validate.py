"""Validate STAC JSON offline, against schemas shipped with riotvit.

pystac's validator fetches the JSON schemas it lacks over http. riotvit runs without network, so
the core STAC 1.1 schemas come from pystac itself and the extension schemas riotvit writes
(projection v2.0.0, raster v1.1.0; Apache-2.0, copied from the stac-extensions repositories at
those tags, licences next to them in ``schemas/``) from this package. Any other schema is
refused with a clear error instead of a download.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from riotvit.errors import clip
from riotvit.stac.errors import StacError

SHIPPED = {
    "https://stac-extensions.github.io/projection/v2.0.0/schema.json": "projection-v2.0.0.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json": "raster-v1.1.0.json",
}
"""Extension schema URI -> file in ``riotvit/stac/schemas``."""


def local_validator():
    """A pystac ``JsonSchemaSTACValidator`` that resolves every schema locally and never downloads."""
    from pystac.validation import JsonSchemaSTACValidator

    class LocalSTACValidator(JsonSchemaSTACValidator):
        def __init__(self) -> None:
            super().__init__()
            folder = resources.files("riotvit.stac") / "schemas"
            for uri, name in SHIPPED.items():
                self.schema_cache[uri] = json.loads(folder.joinpath(name).read_text(encoding="utf-8"))

        def _get_schema(self, schema_uri: str) -> dict[str, Any]:
            uri = schema_uri.rstrip("#")
            if uri not in self.schema_cache:
                raise StacError(f"STAC schema {uri} is not shipped with riotvit, so it cannot be checked offline; "
                                "remove that extension or validate online with pystac")
            return self.schema_cache[uri]

    return LocalSTACValidator()


def validate_stac(path: str | Path) -> list[str]:
    """Validate a STAC file and every child and item it links to, offline.

    Returns:
        The files validated (catalog first).

    Raises:
        StacError: a file that does not validate (the first error, one line), or a schema not shipped.
    """
    from pystac.errors import STACValidationError
    from pystac.validation import validate_dict

    validator = local_validator()
    todo, done = [Path(path).resolve()], []
    while todo:
        p = todo.pop(0)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise StacError(f"{p}: cannot read STAC JSON ({clip(str(e), 120)})") from None
        try:
            validate_dict(data, href=str(p), validator=validator)
        except STACValidationError as e:
            best = str(e).splitlines()[-1] if str(e) else "invalid"
            raise StacError(f"{p}: does not validate as STAC ({clip(best, 160)}); this is a bug in its writer") from None
        done.append(str(p))
        for link in data.get("links", []):
            if link.get("rel") in ("child", "item") and not str(link.get("href", "")).startswith(("http:", "https:")):
                todo.append((p.parent / link["href"]).resolve())
    return done
