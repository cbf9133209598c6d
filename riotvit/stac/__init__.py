"""STAC in and out.

``read`` turns STAC Items / ItemCollections / Catalogs into sources for ``riotvit tile`` (a VRT
per item, written by ``vrt``); ``write`` describes a prediction folder as a self-contained STAC
Catalog; ``validate`` checks STAC JSON offline against the schemas shipped in ``schemas/``.
"""

from riotvit.lazy import lazy_exports

_EXPORTS = {
    "is_stac_input": "riotvit.stac.read",
    "resolve_stac_inputs": "riotvit.stac.read",
    "load_items": "riotvit.stac.read",
    "write_prediction_stac": "riotvit.stac.write",
    "validate_stac": "riotvit.stac.validate",
    "StacError": "riotvit.stac.errors",
}
__all__ = list(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
