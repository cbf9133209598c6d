"""``riotvit join``: labels and metadata per crop from ACLED events and census polygons.

Reads a tile set, an ACLED export and a census layer (and optionally a population raster) and
writes ``samples.parquet``: one row per crop and acquisition date with metadata features
(``census_*``, ``hist_*``), targets for every task head (see ``riotvit.join.events.labels``), a
spatial block cross-validation ``fold`` with ``near_folds`` buffer bits, a default ``split`` and
an optional temporal split. Provenance (files, checksums, config, what was assumed) travels in
the Parquet file's metadata under the key ``riotvit``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import Field, model_validator
from pyproj import Transformer

from riotvit.config import StrictModel
from riotvit.errors import ConfigError, EventsError
from riotvit.io import file_sha256, relative_to_artifact
from riotvit.join.census import CensusConfig, interpolate_to_crops, read_census
from riotvit.join.events.acled import AcledConfig, AcledReport, read_acled
from riotvit.join.events.labels import LabelSpec, build_history, build_reference, build_targets
from riotvit.join.folds import assign_folds, default_split, near_folds, time_split_labels
from riotvit.join.samples import (
    META_KEY,
    SAMPLES_FORMAT,
    SAMPLES_FORMAT_VERSION,
    SamplesMeta,
    open_samples,
    read_samples,
    write_samples,
)
from riotvit.progress import Reporter
from riotvit.stage import start_stage
from riotvit.tile.tileset import TileSet

__all__ = ["META_KEY", "SAMPLES_FORMAT", "SAMPLES_FORMAT_VERSION", "JoinConfig", "JoinResult", "SamplesMeta",
           "census_features", "join", "open_samples", "project_events", "read_samples", "with_census_roles"]


class JoinConfig(StrictModel):
    """Options of ``riotvit join``."""

    lead_days: int = Field(0, ge=0, description="Days between the acquisition date and the start of the label window.")
    horizon_days: int = Field(365, gt=0, description="Length of the label window, days.")
    history_days: list[int] = Field([90, 365], description="History windows before the acquisition date, days.")
    radii_m: list[float] = Field([2000.0, 10000.0], description="Radii around each crop's centre for history counts, metres.")
    riot_event_types: list[str] = Field(["Riots"], description="ACLED event types that make a crop a riot crop.")
    riot_sub_event_types: list[str] = Field([], description="Extra ACLED sub-event types that count as riots (e.g. 'Excessive force against protesters').")
    since_cap_days: int = Field(1825, gt=0, description="Cap of days-since-last-riot when there was none.")
    history_event_types: list[str] | None = Field(None, description="ACLED event types that get history features (default: all six).")
    acled: AcledConfig = Field(default_factory=AcledConfig, description="How the ACLED export is read (precision radii, exclusions).")
    census: CensusConfig = Field(default_factory=CensusConfig, description="Census column roles (default: from the catalog entry).")
    block_m: float = Field(5000.0, gt=0, description="Side of the spatial cross-validation blocks, metres.")
    n_folds: int = Field(5, ge=2, le=20, description="Number of spatial folds.")
    buffer_m: float | None = Field(None, ge=0, description="Buffer ring excluded from training around a test fold, metres (default: one crop, crop_m).")
    fold_seed: int = Field(0, description="Seed for dealing blocks to folds.")
    test_fold: int = Field(0, ge=0, description="Fold held out as test in the default split column.")
    val_fold: int | None = Field(1, ge=0, description="Fold used for validation in the default split column.")
    temporal_split: dt.date | None = Field(None, description="Acquisitions before this date are 'past', later 'future' (column time_split).")

    @model_validator(mode="after")
    def _folds(self) -> JoinConfig:
        if self.test_fold >= self.n_folds or (self.val_fold is not None and self.val_fold >= self.n_folds):
            raise ValueError(f"test_fold/val_fold must be below n_folds={self.n_folds}")
        if self.val_fold == self.test_fold:
            raise ValueError("val_fold must differ from test_fold")
        return self

    def label_spec(self) -> LabelSpec:
        return LabelSpec(self.lead_days, self.horizon_days, tuple(self.history_days), tuple(self.radii_m),
                         tuple(self.riot_event_types), tuple(self.riot_sub_event_types), self.since_cap_days,
                         history_types=tuple(self.history_event_types) if self.history_event_types else None)


def with_census_roles(cfg: JoinConfig, entry, census_path: Path | None, overrides: dict | None = None) -> JoinConfig:
    """Census column roles: the config's own, else the catalog entry's ``columns``, then ``overrides``."""
    roles = cfg.census.model_dump()
    if entry is not None and entry.columns is not None and not (cfg.census.extensive or cfg.census.intensive):
        c = entry.columns
        roles.update(extensive=c.extensive, intensive=c.intensive, population=c.population, id_column=c.name,
                     layer=entry.layer or roles["layer"])
    roles.update(overrides or {})
    cfg = cfg.model_copy(update={"census": type(cfg.census).model_validate(roles)})
    if census_path is not None and not (cfg.census.extensive or cfg.census.intensive):
        raise ConfigError(f"{census_path}: say which census columns to use with --extensive/--intensive "
                          "(or a catalog entry with 'columns')")
    return cfg


@dataclass
class JoinResult:
    """What ``join`` wrote and found."""

    path: Path
    n_rows: int
    positives: dict[str, int]
    features: list[str]
    targets: list[str]
    events: dict[str, int]
    acled_report: AcledReport
    census_lines: list[str]
    folds: dict[int, int]
    seconds: float
    warnings: list[str] = field(default_factory=list)

    def summary_lines(self) -> list[str]:
        pos = self.positives.get("riot", 0)
        lines = [
            f"rows: {self.n_rows:,} crops; riot positives {pos:,} ({pos / max(self.n_rows, 1):.1%})",
            "positives per target: " + ", ".join(f"{k} {v:,}" for k, v in self.positives.items()),
            f"features: {len(self.features)} ({sum(f.startswith('census_') for f in self.features)} census, "
            f"{sum(f.startswith('hist_') for f in self.features)} history)",
            "events: " + ", ".join(f"{k} {v:,}" for k, v in self.events.items()),
            "folds (crops): " + ", ".join(f"{k}: {v:,}" for k, v in sorted(self.folds.items())),
        ]
        return lines


def project_events(events: pd.DataFrame, epsg: int) -> pd.DataFrame:
    """Add ``x``, ``y`` in the grid CRS to an ACLED table (lon/lat WGS 84)."""
    tr = Transformer.from_crs(4326, epsg, always_xy=True)
    x, y = tr.transform(events["longitude"].to_numpy(), events["latitude"].to_numpy())
    out = events.copy()
    out["x"], out["y"] = x, y
    return out


def _lonlat_extent(bounds, epsg: int) -> str:
    tr = Transformer.from_crs(epsg, 4326, always_xy=True)
    lon0, lat0, lon1, lat1 = tr.transform_bounds(*bounds)
    return f"lon {lon0:.3f}..{lon1:.3f}, lat {lat0:.3f}..{lat1:.3f}"


def census_features(
    rows: pd.DataFrame, crops, grid, census: str | Path | None, cfg: JoinConfig,
    population_raster: str | Path | None = None,
) -> tuple[pd.DataFrame, list[str], dict, list[str]]:
    """Census values interpolated onto crops, aligned with ``rows`` (by ``crop_id``).

    Args:
        rows: one row per crop and date (needs ``crop_id``).
        crops: unique crop footprints (``crop_id``, ``col``, ``row``, geometry in the grid CRS).

    Returns:
        (features aligned with ``rows``, report lines, provenance dict, warnings).
    """

    if census is None:
        return pd.DataFrame(index=rows.index), [], {}, []
    cgdf, crep = read_census(census, cfg.census)
    vals = interpolate_to_crops(cgdf, crops, cfg.census, population_raster, crep, grid=grid)
    out = vals.reindex(rows["crop_id"]).set_index(rows.index).astype("float32")
    meta = {"path": str(census), "sha256": file_sha256(census), "method": crep.method,
            "columns": crep.columns, "coverage": crep.coverage,
            "population_raster": str(population_raster) if population_raster else None}
    return out, crep.lines(), meta, list(crep.warnings)


def join(
    tileset: str | Path,
    acled: str | Path,
    census: str | Path | None,
    out: str | Path,
    config: JoinConfig | None = None,
    *,
    population_raster: str | Path | None = None,
    overwrite: bool = False,
    reporter: Reporter | None = None,
) -> JoinResult:
    """Build ``samples.parquet`` from a tile set, an ACLED export and census polygons.

    Raises:
        EventsError: no usable events, events entirely outside the tile set (both extents are
            named), or label windows outside the export's dates.
        CensusError: census file or columns unusable.
        OutputExistsError: ``out`` exists and ``overwrite`` is False.
    """
    st = start_stage(config, JoinConfig, out, reporter, overwrite=overwrite, what="samples table")
    cfg = st.cfg
    ts = TileSet.open(tileset)
    tiles = ts.tiles.drop(columns="geometry").reset_index(drop=True)
    tiles["date"] = pd.to_datetime(tiles["date"])
    ev = _read_events(acled, ts, tiles, cfg)
    st.rep.log(f"events: {len(ev.events):,} read from {Path(acled).name} ({ev.report.variant})")
    samples, census_lines, census_meta, warnings = _samples_table(ts, tiles, ev, census, cfg, population_raster)
    warnings = ev.warnings + warnings
    features = [c for c in samples.columns if c.startswith(("census_", "hist_")) and c != "census_coverage"]
    # census_coverage says how much of a crop the census covers: a data-quality column, not a driver
    target_cols = cfg.label_spec().target_columns()
    positives = {c: int((samples[c] > 0).sum()) for c in target_cols}
    if positives["riot"] == 0:
        warnings.append("no crop has a riot in its label window: check the riot types, dates and area")
    counts = ev.counts(cfg.label_spec())
    base = st.out.parent  # every path in the table's metadata is relative to the folder holding it
    if census_meta:
        census_meta["path"] = relative_to_artifact(census_meta["path"], base)
        if census_meta.get("population_raster"):
            census_meta["population_raster"] = relative_to_artifact(census_meta["population_raster"], base)
    meta = samples_meta(ts, acled, ev, counts, census_meta, cfg, features, target_cols, warnings, base)
    write_samples(samples, meta, st.out)
    folds = samples["fold"].to_numpy()
    fold_counts = {int(k): int(v) for k, v in zip(*np.unique(folds, return_counts=True))}
    return JoinResult(st.out, len(samples), positives, features, target_cols, counts, ev.report, census_lines,
                      fold_counts, st.elapsed(), warnings)


@dataclass
class _Events:
    """The ACLED events of a join, in the grid CRS, with the label windows they must cover."""

    events: pd.DataFrame
    report: AcledReport
    near_area: np.ndarray  # events within reach of the tile set
    dates: list  # acquisition dates
    windows: list[tuple[pd.Timestamp, pd.Timestamp]]  # label window per date
    warnings: list[str]

    def counts(self, spec: LabelSpec) -> dict[str, int]:
        """What happened to the export's events: read, skipped, excluded, out of area or time, used."""
        ev, arep = self.events, self.report
        in_time = np.zeros(len(ev), dtype=bool)
        ed = ev["event_date"]
        reach = pd.Timedelta(days=max(max(spec.history_days), spec.since_cap_days))
        for d, (_, w1) in zip(self.dates, self.windows):
            in_time |= ((ed >= d - reach) & (ed < w1)).to_numpy()
        excl = ev["label_excluded"].to_numpy()
        counts = {"read": arep.n_rows, "skipped while reading": arep.n_rows - arep.n_valid,
                  "excluded (precision)": int(ev["label_excluded"].sum()),
                  "outside the area": int((~self.near_area & ~excl).sum()),
                  "outside the time windows": int((self.near_area & ~in_time & ~excl).sum()),
                  "used": int((self.near_area & in_time & ~excl).sum())}
        for reason, n in arep.skipped.items():
            counts[f"skipped: {reason}"] = n
        return counts


def _read_events(acled: str | Path, ts: TileSet, tiles: pd.DataFrame, cfg: JoinConfig) -> _Events:
    """Read and project the export; check it meets the tile set in space and the label windows in time.

    Raises:
        EventsError: no usable events, none near the tile set, or none in the label windows.
    """
    grid = ts.grid
    events, arep = read_acled(acled, cfg.acled)
    if events.empty:
        raise EventsError(f"{acled}: no usable events ({arep.n_rows} rows, all skipped); see the reasons with riotvit join -v")
    events = project_events(events, grid.epsg)
    spec = cfg.label_spec()
    rmax = max(max(spec.radii_m), max(cfg.acled.geo_precision_radius_m.values(), default=0.0))
    ext = ts.info.extent
    near_area = (events["x"].between(ext[0] - rmax, ext[2] + rmax) & events["y"].between(ext[1] - rmax, ext[3] + rmax)).to_numpy()
    if not near_area.any():
        eb = (events["longitude"].min(), events["latitude"].min(), events["longitude"].max(), events["latitude"].max())
        raise EventsError(
            f"{acled}: all {len(events):,} events lie outside the tile set {ts.path} "
            f"(tile set: {_lonlat_extent(ext, grid.epsg)}; events: lon {eb[0]:.3f}..{eb[2]:.3f}, lat {eb[1]:.3f}..{eb[3]:.3f}); "
            "give the ACLED export for this area, or tile imagery of the events' area"
        )
    dates = sorted(tiles["date"].unique())
    win = [(d + pd.Timedelta(days=spec.lead_days), d + pd.Timedelta(days=spec.lead_days + spec.horizon_days)) for d in dates]
    warnings = _window_warnings(acled, events, dates, win, spec)
    return _Events(events, arep, near_area, dates, win, warnings)


def _window_warnings(acled: str | Path, events: pd.DataFrame, dates: list, win: list, spec: LabelSpec) -> list[str]:
    """Warnings for label and history windows the export only partly covers.

    Raises:
        EventsError: every label window lies outside the export's dates.
    """
    emin, emax = events["event_date"].min(), events["event_date"].max()
    if all(w1 <= emin or w0 > emax for w0, w1 in win):
        raise EventsError(
            f"{acled}: the label windows ({', '.join(f'{a:%Y-%m-%d}..{b:%Y-%m-%d}' for a, b in win)}) lie outside the "
            f"export's dates ({emin:%Y-%m-%d}..{emax:%Y-%m-%d}); use an export covering the year after the imagery, "
            "or imagery acquired within the export's period"
        )
    warnings = []
    for (w0, w1), d in zip(win, dates):
        if w1 > emax + pd.Timedelta(days=1):
            warnings.append(
                f"label window {w0:%Y-%m-%d}..{w1:%Y-%m-%d} (imagery of {d:%Y-%m-%d}) runs past the export's last event "
                f"({emax:%Y-%m-%d}): targets may miss later events"
            )
        h0 = d - pd.Timedelta(days=max(spec.history_days))
        if h0 < emin - pd.Timedelta(days=1):
            warnings.append(
                f"history window from {h0:%Y-%m-%d} starts before the export's first event ({emin:%Y-%m-%d}): "
                "history features undercount"
            )
    return warnings


def _samples_table(ts: TileSet, tiles: pd.DataFrame, ev: _Events, census: str | Path | None, cfg: JoinConfig,
                   population_raster: str | Path | None) -> tuple[pd.DataFrame, list[str], dict, list[str]]:
    """One row per crop and date: position, census and history features, targets, folds and splits.

    Returns:
        (the table, census report lines, census provenance, census warnings).
    """
    grid, spec = ts.grid, cfg.label_spec()
    local = ev.events[ev.near_area]  # far-away events touch no crop (and may not even project)
    targets = build_targets(tiles, local, grid, spec)
    history = build_history(tiles, local, grid, spec)
    reference = build_reference(tiles, local, grid, spec)
    census_df, census_lines, census_meta, warnings = census_features(
        tiles, ts.tiles.drop_duplicates("crop_id")[["crop_id", "col", "row", "geometry"]], grid, census, cfg,
        population_raster)
    cols, rows = tiles["col"].to_numpy(), tiles["row"].to_numpy()
    folds = assign_folds(grid, cols, rows, cfg.block_m, cfg.n_folds, cfg.fold_seed)
    near = near_folds(grid, cols, rows, folds, _buffer_m(ts, cfg))
    samples = pd.DataFrame({
        "crop_id": tiles["crop_id"],
        "date": tiles["date"].dt.date,
        "col": cols,
        "row": rows,
        "x": cols * grid.stride_m + grid.crop_m / 2,
        "y": rows * grid.stride_m + grid.crop_m / 2,
        "chip_index": tiles["chip_index"],
        "source": tiles["source"],
        "valid_fraction": tiles["valid_fraction"],
    })
    samples = pd.concat([samples, census_df, history, targets, reference], axis=1)
    samples["fold"] = folds
    samples["near_folds"] = near
    samples["split"] = default_split(folds, near, cfg.test_fold, cfg.val_fold)
    if cfg.temporal_split is not None:
        samples["time_split"] = time_split_labels(samples["date"], cfg.temporal_split)
    return samples, census_lines, census_meta, warnings


def _buffer_m(ts: TileSet, cfg: JoinConfig) -> float:
    """The buffer ring around test folds: the config's, else one crop."""
    return ts.grid.crop_m if cfg.buffer_m is None else cfg.buffer_m


def samples_meta(ts: TileSet, acled: str | Path, ev: _Events, counts: dict[str, int], census_meta: dict,
                 cfg: JoinConfig, features: list[str], targets: list[str], warnings: list[str],
                 base: Path | None = None) -> SamplesMeta:
    """The samples table's metadata: inputs with checksums, label definition, features and folds.

    Paths are recorded relative to ``base``, the folder of the samples table (as given when None).
    """
    rel = (lambda p: relative_to_artifact(p, base)) if base is not None else str
    emin, emax = ev.events["event_date"].min(), ev.events["event_date"].max()
    return SamplesMeta.build(
        tileset={"path": rel(ts.path), "signature": ts.info.signature, "n_crops": len(ts), "grid": ts.grid.to_dict(),
                 "bands": ts.bands},
        acled={"path": rel(acled), "sha256": file_sha256(acled), "variant": ev.report.variant,
               "date_range": [f"{emin:%Y-%m-%d}", f"{emax:%Y-%m-%d}"], "assumptions": ev.report.assumptions,
               "events": counts},
        census=census_meta,
        config=cfg.model_dump(mode="json"),
        features=features,
        targets=targets,
        type_counts=[c for c in targets if c.startswith("count_")],
        label_windows=[[f"{a:%Y-%m-%d}", f"{b:%Y-%m-%d}"] for a, b in ev.windows],
        folds={"n": cfg.n_folds, "block_m": cfg.block_m, "buffer_m": _buffer_m(ts, cfg), "seed": cfg.fold_seed,
               "test_fold": cfg.test_fold, "val_fold": cfg.val_fold},
        warnings=warnings,
    )
