"""Write a GDAL VRT that stacks single assets into one multi-band raster, with an optional mask.

A STAC item keeps each band in its own file (often a COG, sometimes at a coarser resolution).
The tiler takes one raster per source, so the chosen assets are stacked, in order, in a small
VRT: GDAL reads the assets through it (range reads for COGs, ``/vsicurl/`` for URLs), and a
cloud / scene-classification asset becomes the VRT's mask band, which the tiler reads as the
per-dataset nodata mask. No pixel is copied.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, replace
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import numpy as np
from affine import Affine

from riotvit.io import atomic_file
from riotvit.stac.errors import StacError

_GDAL_TYPES = {
    "uint8": "Byte", "int8": "Int8", "uint16": "UInt16", "int16": "Int16", "uint32": "UInt32",
    "int32": "Int32", "float32": "Float32", "float64": "Float64",
}

MARKER_KEY = "RIOTVIT_STAC_ITEM"
"""Dataset metadata key naming the STAC item a VRT was made from (marks the file as riotvit's)."""


@dataclass(frozen=True)
class AssetRaster:
    """One band of one asset, opened once to learn its grid."""

    gdal_path: str
    band: int  # 1-based band of the asset file
    name: str
    crs_wkt: str
    transform: Affine
    width: int
    height: int
    dtype: str
    nodata: float | None
    scale: float = 1.0
    offset: float = 0.0

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        from rasterio.transform import array_bounds

        return array_bounds(self.height, self.width, self.transform)


@dataclass(frozen=True)
class MaskRule:
    """How an asset's values become the valid mask: a value -> valid (255) or invalid (0) table."""

    asset: AssetRaster
    valid_values: tuple[int, ...] | None  # values that are valid; None = everything but invalid_values
    invalid_values: tuple[int, ...] = ()

    def lut(self) -> str:
        """GDAL ``<LUT>`` for integer classes: exact at integers (GDAL interpolates between points)."""
        vals = sorted(set(self.invalid_values) | set(self.valid_values or ()) | {0, 255})
        vals = list(range(0, max(vals) + 1)) if max(vals) <= 255 else vals
        out = []
        for v in vals:
            ok = v in self.valid_values if self.valid_values is not None else v not in self.invalid_values
            out.append(f"{v}:{255 if ok else 0}")
        return ",".join(out)


def stack_grid(bands: list[AssetRaster]) -> tuple[Affine, int, int]:
    """The VRT grid: the finest band's pixel size over the union of the bands' extents."""
    res_x = min(abs(b.transform.a) for b in bands)
    res_y = min(abs(b.transform.e) for b in bands)
    b = np.array([a.bounds for a in bands])
    x0, y0, x1, y1 = float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max())
    width = max(1, int(math.ceil(round((x1 - x0) / res_x, 6))))
    height = max(1, int(math.ceil(round((y1 - y0) / res_y, 6))))
    return Affine(res_x, 0.0, x0, 0.0, -res_y, y1), width, height


def _rects(a: AssetRaster, t: Affine) -> str:
    x = (a.transform.c - t.c) / t.a
    y = (a.transform.f - t.f) / t.e
    w = a.width * abs(a.transform.a) / t.a
    h = a.height * abs(a.transform.e) / abs(t.e)
    return (
        f'<SrcRect xOff="0" yOff="0" xSize="{a.width}" ySize="{a.height}"/>'
        f'<DstRect xOff="{x:.10g}" yOff="{y:.10g}" xSize="{w:.10g}" ySize="{h:.10g}"/>'
    )


def _source(a: AssetRaster, t: Affine, resampling: str, extra: str = "") -> str:
    nodata = f"<NODATA>{_num(a.nodata)}</NODATA>" if a.nodata is not None else ""
    return (
        f'<ComplexSource resampling="{resampling}">'
        f'<SourceFilename relativeToVRT="0">{escape(a.gdal_path)}</SourceFilename>'
        f"<SourceBand>{a.band}</SourceBand>{_rects(a, t)}{nodata}{extra}</ComplexSource>"
    )


def _num(v: float) -> str:
    return "nan" if isinstance(v, float) and math.isnan(v) else repr(float(v)) if isinstance(v, float) else str(v)


def vrt_xml(
    bands: list[AssetRaster], *, date: dt.date, item_id: str, mask: MaskRule | None = None,
    resampling: str = "bilinear",
) -> str:
    """The VRT text: one band per ``bands`` entry, in order, on :func:`stack_grid`.

    Bands whose grid equals the stack's are copied pixel for pixel; coarser ones are resampled
    with ``resampling`` (the mask always with nearest neighbour). The acquisition date is in
    the dataset metadata (``ACQUISITION_DATE``), where the tiler looks for it.
    """
    t, width, height = stack_grid(bands)
    dtype = np.result_type(*[np.dtype(b.dtype) for b in bands]).name
    gdal_type = _GDAL_TYPES.get(dtype, "Float64")
    nodatas = {b.nodata for b in bands if b.nodata is not None}
    band_nodata = nodatas.pop() if len(nodatas) == 1 else None
    gt = ", ".join(f"{v:.17g}" for v in (t.c, t.a, t.b, t.f, t.d, t.e))
    lines = [
        f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">',
        f'  <SRS dataAxisToSRSAxisMapping="1,2">{escape(bands[0].crs_wkt)}</SRS>',
        f"  <GeoTransform>{gt}</GeoTransform>",
        "  <Metadata>",
        f'    <MDI key="ACQUISITION_DATE">{date.isoformat()}</MDI>',
        f"    <MDI key={quoteattr(MARKER_KEY)}>{escape(item_id)}</MDI>",
        "  </Metadata>",
    ]
    for i, b in enumerate(bands, start=1):
        same = b.transform == t and (b.width, b.height) == (width, height)
        lines.append(f'  <VRTRasterBand dataType="{gdal_type}" band="{i}">')
        lines.append(f"    <Description>{escape(b.name)}</Description>")
        if band_nodata is not None:
            lines.append(f"    <NoDataValue>{_num(band_nodata)}</NoDataValue>")
        if b.scale != 1.0 or b.offset != 0.0:
            lines.append(f"    <Offset>{b.offset!r}</Offset>")
            lines.append(f"    <Scale>{b.scale!r}</Scale>")
        lines.append("    " + _source(b, t, "nearest" if same else resampling))
        lines.append("  </VRTRasterBand>")
    if mask is not None:
        lines += [
            "  <MaskBand>",
            '    <VRTRasterBand dataType="Byte">',
            # the mask asset's own nodata class is an entry of the table, not a hole
            "      " + _source(replace(mask.asset, nodata=None), t, "nearest", extra=f"<LUT>{mask.lut()}</LUT>"),
            "    </VRTRasterBand>",
            "  </MaskBand>",
        ]
    lines.append("</VRTDataset>")
    return "\n".join(lines) + "\n"


def write_vrt(path: Path, xml: str) -> Path:
    """Write ``xml`` to ``path`` atomically, leaving an identical file untouched (so a rerun's
    tile-set signature, which hashes its sources, stays the same)."""
    if path.exists():
        old = path.read_text(encoding="utf-8", errors="replace")
        if old == xml:
            return path
        if MARKER_KEY not in old:  # never overwrite a file riotvit did not write
            raise StacError(f"{path}: exists and was not written by riotvit; move it away, or tile to another --out "
                            f"(the item VRTs go to {path.parent})")
    with atomic_file(path) as tmp:
        tmp.write_text(xml, encoding="utf-8")
    return path
