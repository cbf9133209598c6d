"""The STAC error: a STAC input or output that riotvit cannot use (belongs in ``riotvit.errors``)."""

from __future__ import annotations

from riotvit.errors import RasterError


class StacError(RasterError):
    """A STAC document or one of its assets cannot be used (not STAC, missing bands or dates,
    unreadable asset), or a STAC catalog written by riotvit does not validate."""
