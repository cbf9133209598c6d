"""Two image dates for a model trained with ``model.temporal``: find the previous date's mosaic, and
pair each crop with its pixels there (as training does, with the tile set's previous date)."""

from __future__ import annotations

import numpy as np

from riotvit.errors import InputError
from riotvit.predict.plan import PredictPlan, reorder_bands
from riotvit.tile.bands import cut_at
from riotvit.tile.meta import stated_scaling
from riotvit.tile.plan import SourceSpec
from riotvit.tile.source import open_source
from riotvit.train.bundle import Bundle


def previous_sources(plan: PredictPlan, bundle: Bundle, previous_imagery: list[SourceSpec] | None,
                     bands: list[str] | None) -> list:
    """The previous date's mosaic for a model trained with ``model.temporal``: ``previous_imagery``,
    else the imagery's next older date; none for a one-date model.

    Raises:
        InputError: a temporal model without a previous image, or previous imagery for a one-date model.
    """

    temporal = bundle.meta.temporal
    if temporal == "none":
        if previous_imagery:
            raise InputError(f"{bundle.path}: this model sees one image date (model.temporal: none); drop --previous-imagery")
        return []
    if previous_imagery:
        scale, offset = stated_scaling(bundle.meta.provenance.tileset.sources)  # read as the current date is
        srcs = [open_source(s.path, source_id=s.id, bands=bands or s.bands, date=s.date, checksum=False,
                            sensor=s.sensor, scale=s.scale if s.scale is not None else scale,
                            offset=s.offset if s.offset is not None else offset) for s in previous_imagery]
        return _checked([reorder_bands(s, list(bundle.meta.bands)) for s in srcs], plan)
    if plan.previous:
        return plan.previous
    raise InputError(f"{bundle.path}: the model compares each crop with the previous image date (model.temporal: "
                     f"{temporal}); pass --previous-imagery FILE (the same area before {plan.date}), or that date's "
                     "file with --imagery too (in a pipeline: sources.predict_previous_raster)")


def _checked(previous: list, plan: PredictPlan) -> list:
    """Refuse a previous image that is the mapped one, is not older, or does not overlap the region."""
    import shapely
    from rasterio.crs import CRS
    from rasterio.warp import transform_bounds

    mapped = {s.path.resolve() for s in plan.sources}
    newest = max(s.date for s in plan.sources)
    dst = CRS.from_epsg(plan.grid.epsg)
    for s in previous:
        if s.path.resolve() in mapped:
            raise InputError(f"{s.path}: --previous-imagery is the imagery being mapped; give the same area at an "
                             "earlier date")
        if s.date >= newest:
            raise InputError(f"{s.path}: dated {s.date}, not before the mapped imagery ({newest}); give the image "
                             "date before it")
        b = s.bounds if s.epsg == plan.grid.epsg else transform_bounds(CRS.from_wkt(s.crs_wkt), dst, *s.bounds,
                                                                        densify_pts=21)
        if not shapely.box(*b).intersects(plan.region_grid):
            raise InputError(f"{s.path}: does not overlap the region; give the previous image of the same area")
    return previous


def with_previous(cr, prev_band, i: int, grid, min_valid: float) -> tuple[np.ndarray, np.ndarray]:
    """A crop row's chips with the previous date's pixels as bands ``C..2C-1`` and masks (k, 2, H, W).

    Where the previous image has less than ``min_valid`` of a crop, the crop is paired with itself
    (no change visible), as training pairs a tile set's first date.
    """
    pc, pm = cut_at(prev_band, i, cr.xs, grid)
    own = pm.reshape(pm.shape[0], -1).mean(1) < min_valid
    pc[own], pm[own] = cr.chips[own], cr.masks[own]
    return np.concatenate([cr.chips, pc], axis=1), np.stack([cr.masks, pm], axis=1)
