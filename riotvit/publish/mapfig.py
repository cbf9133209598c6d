"""``map.png`` and ``map.pdf``: the hand-out map of a prediction folder, drawn without QGIS.

The same page as the QGIS print layout (:mod:`riotvit.publish.layout`): A4 landscape, the risk
raster over the imagery, partial cells at the image edge hatched, optional admin boundaries, a
legend with the class edges titled by the forecast window, a scale bar, a north arrow, the title,
the data line, the skill line and the disclaimer. The risk classes are read from ``risk.qml``
when it is there, so the picture and QGIS show the same classes and colours.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from riotvit.errors import InputError
from riotvit.io import atomic_file, resolve_recorded
from riotvit.publish.maptexts import MapTexts, map_texts, read_run
from riotvit.publish.styles import RISK_CLASSES

A4_LANDSCAPE_IN = (297 / 25.4, 210 / 25.4)
PNG_DPI = 150
RISK_ALPHA = 0.7
PARTIAL_BELOW = 0.99  # valid_fraction under this: a partial cell at the image edge (as the cells' ``edge`` flag)
MAX_IMAGE_PX = 1600  # imagery is read decimated to at most this many pixels across


@dataclass(frozen=True)
class RiskClasses:
    """Class upper edges, colours and legend labels (the lowest class starts at ``lower``).

    ``continuous``: the values are the stops of an interpolated ramp (QGIS ``INTERPOLATED``), not
    class edges.
    """

    lower: float
    uppers: tuple[float, ...]
    colors: tuple[str, ...]
    labels: tuple[str, ...]
    continuous: bool = False


def risk_classes(risk_tif: Path) -> RiskClasses:
    """The classes of ``risk.qml`` beside ``risk_tif`` (a DISCRETE ramp), else :data:`RISK_CLASSES`."""
    qml = Path(risk_tif).with_suffix(".qml")
    if qml.exists():
        try:
            shader = ET.parse(qml).getroot().find(".//colorrampshader")
        except ET.ParseError:
            shader = None
        items = [] if shader is None else shader.findall("item")
        kind = None if shader is None else shader.get("colorRampType")
        if kind in ("DISCRETE", "INTERPOLATED") and items:
            lower = float(shader.get("minimumValue") or 0.0)
            uppers = tuple(float(i.get("value", "nan")) for i in items)
            return RiskClasses(lower if math.isfinite(lower) else 0.0, uppers,
                               tuple(i.get("color", "#000000") for i in items),
                               tuple(i.get("label", "") or i.get("value", "") for i in items),
                               continuous=kind == "INTERPOLATED")
    return RiskClasses(RISK_CLASSES[0].lower, tuple(c.upper for c in RISK_CLASSES),
                       tuple(c.color for c in RISK_CLASSES), tuple(c.label for c in RISK_CLASSES))


def _read_risk(path: Path) -> tuple[np.ma.MaskedArray, tuple[float, float, float, float], Any]:
    import rasterio

    if not path.exists():
        raise InputError(f"{path}: no risk raster; run `riotvit predict` to make the prediction folder")
    with rasterio.open(path) as ds:
        risk = ds.read(1, masked=True).astype(np.float64)
        b = ds.bounds
        return risk, (b.left, b.right, b.bottom, b.top), ds.crs


def _imagery_rgb(pred_dir: Path, run: dict, crs: Any, bounds: tuple[float, float, float, float]) -> np.ndarray | None:
    """The first imagery source as an (H, W, 4) RGBA array over ``bounds`` in ``crs``, stretched
    2-98 %; None when it is absent or unreadable (the map is then drawn without it)."""
    import rasterio

    left, right, bottom, top = bounds
    for src in run.get("imagery") or []:
        path = resolve_recorded(src.get("path", ""), pred_dir)
        if not path.is_file():
            continue
        names = [str(b).lower() for b in src.get("bands") or []]
        idx = [names.index(b) + 1 for b in ("red", "green", "blue")] if {"red", "green", "blue"} <= set(names) else None
        try:
            with rasterio.open(path) as ds:
                idx = idx or ([1, 2, 3] if ds.count >= 3 else [1, 1, 1])
                px = max(abs(ds.transform.a), (right - left) / MAX_IMAGE_PX) if ds.crs == crs else (right - left) / MAX_IMAGE_PX
                shape = (max(1, round((top - bottom) / px)), max(1, round((right - left) / px)))
                dst = _backdrop(ds, idx, crs, bounds, shape)
        except Exception:  # noqa: BLE001 - the picture still shows the risk without the imagery
            continue
        if dst is None:
            continue
        valid = np.isfinite(dst).all(axis=0)
        if not valid.any():
            continue
        rgba = np.zeros((*shape, 4))
        for k in range(3):
            lo, hi = np.percentile(dst[k][valid], [2, 98])
            rgba[..., k] = np.clip((np.nan_to_num(dst[k]) - lo) / max(hi - lo, 1e-9), 0, 1)
        rgba[..., 3] = valid
        return rgba
    return None


def _backdrop(ds, idx: list[int], crs: Any, bounds: tuple[float, float, float, float],
              shape: tuple[int, int]) -> np.ndarray | None:
    """Bands ``idx`` of ``ds`` averaged onto ``shape`` pixels over ``bounds`` (NaN where there is no imagery).

    The window under the map is read once for all bands, in strips along the file's blocks,
    averaged over whole blocks of pixels to about the map's resolution, and only that small array
    is warped: the backdrop of a 24 km region of 3 m imagery took 10.9 s when every band was warped
    from full resolution, and takes about 2 s (mostly decoding). A raster with overviews (a COG) is read from the overview nearest the page instead,
    so a country's map does not decode the country's imagery a second time.
    """
    import rasterio
    from affine import Affine
    from rasterio.enums import Resampling
    from rasterio.transform import from_bounds
    from rasterio.warp import reproject, transform_bounds
    from rasterio.windows import Window
    from rasterio.windows import from_bounds as window_from_bounds

    left, right, bottom, top = bounds
    dst_t = from_bounds(left, bottom, right, top, shape[1], shape[0])
    dst = np.full((len(idx), *shape), np.nan)
    sb = (left, bottom, right, top) if ds.crs == crs else transform_bounds(crs, ds.crs, left, bottom, right, top,
                                                                          densify_pts=21)
    step = min((sb[2] - sb[0]) / abs(ds.transform.a) / shape[1], (sb[3] - sb[1]) / abs(ds.transform.e) / shape[0])
    with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS"):  # decode the imagery's tiles on every core
        if step < 2 or ds.transform.b or ds.transform.d:  # little to decimate (or a rotated raster): warp it all
            reproject(rasterio.band(ds, idx), dst, dst_transform=dst_t, dst_crs=crs, dst_nodata=np.nan,
                      resampling=Resampling.average)
            return dst
        win = window_from_bounds(*sb, transform=ds.transform)
        win = Window(win.col_off - 2 * step, win.row_off - 2 * step, win.width + 4 * step,
                     win.height + 4 * step).round_offsets().round_lengths()
        try:
            win = win.intersection(Window(0, 0, ds.width, ds.height))
        except Exception:  # noqa: BLE001 - rasterio raises when they do not intersect
            return None
        k = int(step)
        if ds.overviews(idx[0]):  # a COG's overviews: GDAL reads the level nearest the page, not every pixel
            out = (len(idx), max(1, -(-win.height // k)), max(1, -(-win.width // k)))
            data = ds.read(idx, window=win, out_shape=out, resampling=Resampling.average, masked=True)
            t = ds.window_transform(win) @ Affine.scale(win.width / out[2], win.height / out[1])
            reproject(np.ma.filled(data.astype(np.float32), np.nan), dst, src_transform=t, src_crs=ds.crs,
                      src_nodata=np.nan, dst_transform=dst_t, dst_crs=crs, dst_nodata=np.nan,
                      resampling=Resampling.average)
            return dst
        # strips along the file's rows of blocks, so each compressed block is decoded once; rows
        # short of a whole k-block are carried into the next strip
        bh = ds.block_shapes[0][0]
        end = win.row_off + win.height
        edges = [win.row_off, *range(-(-win.row_off // bh) * bh, end, bh), end]
        edges = sorted(set(edges))
        parts, carry = [], None
        for r0, r1 in zip(edges, edges[1:]):
            a = ds.read(idx, window=Window(win.col_off, r0, win.width, r1 - r0), masked=True)
            if carry is not None:
                a = np.ma.concatenate([carry, a], axis=1)
            use = a.shape[1] if r1 == end else a.shape[1] // k * k
            if use:
                parts.append(_block_mean(a[:, :use], k))
            carry = a[:, use:] if use < a.shape[1] else None
    src = np.concatenate(parts, axis=1)
    t = ds.window_transform(win) @ Affine.scale(k)
    reproject(src, dst, src_transform=t, src_crs=ds.crs, src_nodata=np.nan, dst_transform=dst_t, dst_crs=crs,
              dst_nodata=np.nan, resampling=Resampling.average)
    return dst


def _block_mean(data: np.ma.MaskedArray, k: int) -> np.ndarray:
    """Mean of the valid pixels of every k x k block (NaN where none is valid); a partial last block averages what it has."""
    c, h, w = data.shape
    ok = ~np.ma.getmaskarray(data).any(axis=0)
    every = bool(ok.all())
    v = np.ma.getdata(data) if every else np.ma.getdata(data) * ok
    pad = ((0, 0), (0, -h % k), (0, -w % k))
    if pad[1][1] or pad[2][1]:
        v = np.pad(v, pad)

    def blocks(a: np.ndarray) -> np.ndarray:  # k strided adds per axis: memory-bound, no per-block reduction
        a = sum(a[..., i::k].astype(np.float32) for i in range(k))
        return sum(a[..., i::k, :] for i in range(k))

    s = blocks(v)
    if every and not (pad[1][1] or pad[2][1]):
        return s / np.float32(k * k)
    m = blocks(np.pad(ok, pad[1:]).astype(np.float32))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(m > 0, s / m, np.nan)


def _partial_cells(pred_dir: Path, crs: Any):
    """The cells flagged ``edge``, else with ``valid_fraction`` under :data:`PARTIAL_BELOW` (a GeoSeries), or None."""
    path = pred_dir / "cells.gpkg"
    if not path.exists():
        return None
    import geopandas as gpd
    import pyogrio

    try:
        cols = [f["name"] if isinstance(f, dict) else f for f in pyogrio.read_info(path, layer="cells")["fields"]]
        flag = "edge" if "edge" in cols else "valid_fraction" if "valid_fraction" in cols else None
        if flag is None:
            return None
        cells = gpd.read_file(path, layer="cells", columns=[flag])
    except Exception:  # noqa: BLE001 - no hatching rather than no map
        return None
    part = cells[cells[flag].astype(bool)] if flag == "edge" else cells[cells[flag] < PARTIAL_BELOW]
    return part.geometry.to_crs(crs) if len(part) else None


def _nice_length(span_m: float) -> float:
    """A round length near a fifth of ``span_m`` (1, 2 or 5 times a power of ten)."""
    target = span_m / 5
    p = 10 ** math.floor(math.log10(target))
    return min((m * p for m in (1, 2, 5, 10)), key=lambda v: abs(v - target))


def _scale_bar(ax, extent: tuple[float, float, float, float]) -> None:
    from matplotlib.patches import Rectangle

    x0, x1, y0, y1 = extent
    seg = _nice_length(x1 - x0) / 2
    h = (y1 - y0) * 0.012
    bx, by = x0 + (x1 - x0) * 0.03, y0 + (y1 - y0) * 0.04
    ax.add_patch(Rectangle((bx - seg * 0.15, by - h * 1.5), seg * 2.45, h * 6, facecolor="white", edgecolor="none",
                           alpha=0.85, zorder=6))
    for k in range(2):
        ax.add_patch(Rectangle((bx + k * seg, by), seg, h, facecolor="black" if k == 0 else "white",
                               edgecolor="black", linewidth=0.8, zorder=7))
    unit, div = ("km", 1000.0) if seg >= 500 else ("m", 1.0)
    for k in range(3):
        v = k * seg / div
        ax.text(bx + k * seg, by + h * 1.6, f"{v:g}" + (f" {unit}" if k == 2 else ""), ha="center", va="bottom",
                fontsize=8, zorder=8)


def _north_arrow(ax) -> None:
    ax.annotate("N", xy=(0.95, 0.95), xytext=(0.95, 0.86), xycoords="axes fraction", ha="center", va="center",
                fontsize=11, fontweight="bold", zorder=8,
                arrowprops={"facecolor": "black", "edgecolor": "black", "width": 4, "headwidth": 12, "headlength": 10},
                bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.85})


def map_figure(pred_dir: str | Path, texts: MapTexts | None = None, admin: Any = None):
    """The hand-out map as a matplotlib ``Figure`` (no pyplot state; nothing written).

    Args:
        pred_dir: the prediction folder (``risk.tif``, ``run.json``, optionally ``cells.gpkg``).
        texts: the words on the map; default :func:`~riotvit.publish.maptexts.map_texts`.
        admin: admin units to outline (a GeoDataFrame or a vector file), or None.
    """
    from matplotlib.colors import BoundaryNorm, LinearSegmentedColormap, ListedColormap, Normalize
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    pred_dir = Path(pred_dir)
    texts = texts or map_texts(pred_dir)
    risk, extent, crs = _read_risk(pred_dir / "risk.tif")
    classes = risk_classes(pred_dir / "risk.tif")
    fig = Figure(figsize=A4_LANDSCAPE_IN)
    w_mm, h_mm = 297.0, 210.0

    def box(x, y, w, h):  # mm from the top-left corner -> figure fraction
        return [x / w_mm, 1 - (y + h) / h_mm, w / w_mm, h / h_mm]

    ax = fig.add_axes(box(10, 27, 190, 155))
    x0, x1, y0, y1 = extent
    # grow the extent to the axes' aspect (190 x 155 mm) with a 2 % margin, as the layout does
    cx, cy, w, h = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * 1.04, (y1 - y0) * 1.04
    w, h = max(w, h * 190 / 155), max(h, w * 155 / 190)
    view = (cx - w / 2, cx + w / 2, cy - h / 2, cy + h / 2)
    ax.set_xlim(view[0], view[1])
    ax.set_ylim(view[2], view[3])
    ax.set_aspect("equal")
    ax.set_facecolor("#f4f4f4")
    ax.set_xticks([])
    ax.set_yticks([])

    rgb = _imagery_rgb(pred_dir, read_run(pred_dir), crs, extent)
    if rgb is not None:
        ax.imshow(rgb, extent=extent, interpolation="bilinear", zorder=1)
    if classes.continuous:
        lo, hi = classes.uppers[0], classes.uppers[-1]
        stops = [((u - lo) / max(hi - lo, 1e-12), c) for u, c in zip(classes.uppers, classes.colors)]
        cmap, norm = LinearSegmentedColormap.from_list("risk", stops), Normalize(lo, hi)
    else:
        edges = [classes.lower, *(u if math.isfinite(u) else max(1.0, classes.lower) for u in classes.uppers)]
        cmap = ListedColormap(list(classes.colors))
        norm = BoundaryNorm(edges, cmap.N)
    ax.imshow(risk, extent=extent, cmap=cmap, norm=norm, alpha=RISK_ALPHA, interpolation="nearest", zorder=2)
    handles = [Patch(facecolor=c, edgecolor="#4d4d4d", alpha=RISK_ALPHA, label=lab)
               for c, lab in zip(classes.colors, classes.labels)]
    partial = _partial_cells(pred_dir, crs)
    if partial is not None:
        partial.plot(ax=ax, facecolor="none", edgecolor="#333333", hatch="////", linewidth=0.0, zorder=3)
        handles.append(Patch(facecolor="white", edgecolor="#333333", hatch="////",
                             label="partial cell (image edge)"))
    if admin is not None:
        import geopandas as gpd

        units = admin if isinstance(admin, gpd.GeoDataFrame) else gpd.read_file(admin)
        units.to_crs(crs).boundary.plot(ax=ax, color="#222222", linewidth=1.0, zorder=4)
        handles.append(Line2D([], [], color="#222222", linewidth=1.0, label="admin unit boundary"))
    ax.set_xlim(view[0], view[1])  # geopandas' plot moves the limits and labels the axes
    ax.set_ylim(view[2], view[3])
    ax.set_xlabel("")
    ax.set_ylabel("")
    _scale_bar(ax, view)
    _north_arrow(ax)

    lax = fig.add_axes(box(206, 27, 81, 155))
    lax.axis("off")
    leg = lax.legend(handles=handles, loc="upper left", title=f"{texts.window}\nriot probability", fontsize=8.5,
                     title_fontsize=9, frameon=False, alignment="left", handlelength=2.2, handleheight=1.3)
    leg.get_title().set_fontweight("bold")

    fig.text(10 / w_mm, 1 - 12 / h_mm, texts.title, fontsize=17, fontweight="bold", va="center")
    fig.text(10 / w_mm, 1 - 21 / h_mm, texts.window, fontsize=11.5, va="center")
    foot = 27 + 155 + 6.5
    fig.text(10 / w_mm, 1 - foot / h_mm, texts.data_line, fontsize=8, color="#282828", va="center")
    if texts.skill_line:
        fig.text(10 / w_mm, 1 - (foot + 5.5) / h_mm, texts.skill_line, fontsize=8, color="#282828", va="center")
    fig.text(10 / w_mm, 1 - (foot + 11.5) / h_mm, texts.disclaimer, fontsize=8.5, style="italic",
             color="#781414", va="center")
    return fig


def write_map_figure(pred_dir: str | Path, texts: MapTexts | None = None, *, admin: Any = None,
                     pdf: bool = True) -> list[Path]:
    """Write ``map.png`` (150 dpi, A4 landscape) and ``map.pdf`` into the prediction folder, atomically.

    Args:
        pred_dir: the prediction folder.
        texts: the words on the map; default from ``run.json`` (:func:`~riotvit.publish.maptexts.map_texts`).
        admin: admin units to outline (a GeoDataFrame or a vector file), or None.
        pdf: also write ``map.pdf`` (vector text, a few hundred kB).

    Returns:
        The written paths.
    """
    pred_dir = Path(pred_dir)
    texts = texts or map_texts(pred_dir)
    fig = map_figure(pred_dir, texts, admin)
    out = []
    # no creation date in the PDF: the same prediction gives byte-identical files
    formats = (("png", {"dpi": PNG_DPI}, {}), ("pdf", {}, {"CreationDate": None}))
    for ext, kw, meta in formats if pdf else formats[:1]:
        path = pred_dir / f"map.{ext}"
        with atomic_file(path) as tmp:
            fig.savefig(tmp, format=ext, facecolor="white", metadata={"Title": texts.title, **meta}, **kw)
        out.append(path)
    return out
