"""Pipeline files: which sources, which configs, which stages (``pipelines/*.yaml``).

A pipeline file names its sources by catalog id or path, gives each stage's config as a mapping
(optionally ``config: FILE`` plus overrides, deep-merged) and lists the stages to run. Relative
paths are looked up next to the pipeline file, then in its parent folder (the project root), then
in the working directory; ``{run}`` stands for the run folder.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from riotvit.cluster import ClusterConfig
from riotvit.config import StrictModel, load_yaml, read_yaml, validate
from riotvit.errors import ConfigError, clip

STAGES = ("sample", "tile", "join", "train", "evaluate", "predict", "explain")
Stage = Literal["sample", "tile", "join", "train", "evaluate", "predict", "explain"]


SECTION_MODELS = {
    "sample": "riotvit.synth:SampleConfig",
    "tile": "riotvit.tile.plan:TileConfig",
    "join": "riotvit.join.stage:JoinConfig",
    "train": "riotvit.train.config:TrainConfig",
    "predict": "riotvit.predict.plan:PredictConfig",
    "explain": "riotvit.explain.stage:ExplainConfig",
}
"""The config class of each stage's section, as ``module:Class`` (imported when a pipeline loads)."""


class Sources(StrictModel):
    raster: list[str] = Field(default_factory=list, description="Imagery: catalog ids or files (several = a mosaic or several dates).")
    predict_raster: list[str] | None = Field(None, description="Imagery the predict stage maps (default: sources.raster); with several dates in sources.raster, name the latest date's files here.")
    predict_previous_raster: list[str] | None = Field(None, description="The same area at the image date before predict_raster's: what a model trained with model.temporal (stack or tokens) compares against.")
    admin: str | None = Field(None, description="Admin units (wards, districts, P-codes) to summarise the prediction by: catalog id or vector file; predict writes admin.gpkg and admin.csv.")
    admin_id: str | None = Field(None, description="The admin layer's id column (default: the first column unique per unit).")
    acled: str | None = Field(None, description="ACLED export: catalog id or file.")
    census: str | None = Field(None, description="Census polygons: catalog id or file.")
    population_raster: str | None = Field(None, description="Population raster for dasymetric census values.")
    date: dt.date | None = Field(None, description="Acquisition date YYYY-MM-DD: overrides the catalog's and the raster's (labels start here).")


class PipelineSpec(StrictModel):
    name: str = Field(description="Pipeline name; the default run folder is runs/<name>.")
    description: str = ""
    out: str | None = Field(None, description="Run folder (default runs/<name>).")
    stages: list[Stage] = Field(list(STAGES), description="Stages to run, in pipeline order.")
    sources: Sources = Field(default_factory=Sources)
    region: str = Field("imagery", description="Prediction region: catalog name, bbox, vector file, or 'imagery' (the rasters' extent).")
    region_crs: str = "EPSG:4326"
    sample: dict[str, Any] = Field(default_factory=dict, description="SampleConfig for the sample stage.")
    tile: dict[str, Any] = Field(default_factory=dict, description="TileConfig (or config: FILE plus overrides).")
    join: dict[str, Any] = Field(default_factory=dict, description="JoinConfig (or config: FILE plus overrides).")
    train: dict[str, Any] = Field(default_factory=dict, description="TrainConfig (or config: FILE plus overrides).")
    predict: dict[str, Any] = Field(default_factory=dict, description="PredictConfig.")
    explain: dict[str, Any] = Field(default_factory=dict, description="ExplainConfig.")
    catalog: str | None = Field(None, description="Catalog folder (default: ./data_catalog, else the project's).")
    cluster: ClusterConfig = Field(default_factory=ClusterConfig, description="How stages scale out: tile and predict run their blocks on workers: N (a local Dask cluster) or scheduler: ADDRESS (a running one), with outputs the same bytes as in one process (so changing them never reruns a stage); train_nproc: N trains on N DDP processes.")


def deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def set_dotted(data: dict, assignment: str) -> None:
    """Apply ``key.sub=value`` (value parsed as YAML) to a nested dict."""
    if "=" not in assignment:
        raise ConfigError(f"--set {assignment}: expected KEY=VALUE, e.g. --set sources.acled=my_export.csv")
    key, value = assignment.split("=", 1)
    parts = key.strip().split(".")
    node = data
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {assignment}: '{p}' is not a section")
    node[parts[-1]] = load_yaml(value, f"--set {clip(assignment)}")


def _safe_name(name: str, path: Path) -> str:
    """The pipeline ``name`` as a folder under ``runs/``: one plain path component."""
    p = Path(name)
    if not name.strip() or p.is_absolute() or len(p.parts) != 1 or name.strip() in (".", ".."):
        raise ConfigError(f"pipeline {path}: name {clip(name)!r} must be a plain folder name (no '/', '..' or "
                          "absolute path): the run folder is runs/<name>; set out: or pass --out for another place")
    return name


def _inside(out: str, path: Path) -> None:
    """A pipeline file's ``out:`` stays under the working directory (no absolute path, no '..'):
    a file from elsewhere must not write anywhere; ``--out`` on the command line may."""
    p = Path(out)
    if p.is_absolute() or ".." in p.parts:
        raise ConfigError(f"pipeline {path}: out {clip(out)!r} leaves the working directory (absolute or '..'); "
                          "use a relative folder such as runs/x, or pass --out explicitly")


class Pipeline:
    """A loaded pipeline: the spec, where it came from and how to resolve its paths."""

    def __init__(self, spec: PipelineSpec, path: Path | None, run: Path):
        self.spec, self.path, self.run = spec, path, run
        self.roots = [path.parent, path.parent.parent, Path.cwd()] if path else [Path.cwd()]

    @classmethod
    def load(cls, path: str | Path, out: str | Path | None = None, sets: list[str] | None = None) -> Pipeline:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"pipeline {path}: no such file; see pipelines/demo.yaml for an example")
        data = read_yaml(path)
        for s in sets or []:
            set_dotted(data, s)
        spec = validate(PipelineSpec, data, str(path))
        order = [s for s in STAGES if s in spec.stages]
        if order != list(dict.fromkeys(spec.stages)):
            raise ConfigError(f"pipeline {path}: stages must be in pipeline order {', '.join(STAGES)}")
        run = Path(out) if out else Path(spec.out) if spec.out else Path("runs") / _safe_name(spec.name, path)
        if out is None and spec.out is not None:
            _inside(spec.out, path)
        pipe = cls(spec, path.resolve(), run)
        pipe.check_sections()
        return pipe

    def check_sections(self) -> None:
        """Validate every listed stage's config now, so a bad value fails before the run folder
        exists or any stage runs (the stages validate them again when they run)."""
        import importlib

        for name in self.spec.stages:
            if name not in SECTION_MODELS:  # evaluate has no config of its own
                continue
            module, cls_name = SECTION_MODELS[name].split(":")
            self.section(name, getattr(importlib.import_module(module), cls_name))
        cl = self.spec.cluster
        if self.explain and (cl.workers or cl.scheduler):
            raise ConfigError(f"pipeline {self.path}: explanations run in one process, not on Dask; drop 'explain' from "
                              "stages or cluster.workers/cluster.scheduler (or explain in a second pipeline without them)")

    def find(self, text: str) -> str:
        """Resolve a path from the pipeline file ({run} expanded); catalog ids pass through."""
        text = text.replace("{run}", str(self.run))
        p = Path(text)
        if p.is_absolute():
            return text
        for root in self.roots:
            if (root / p).exists():
                return str(root / p)
        return text

    @property
    def catalog(self) -> Path | None:
        return Path(self.find(self.spec.catalog)) if self.spec.catalog else None

    def section(self, name: str, model: type):
        """The stage's config: ``config: FILE`` (a YAML, optionally with a section) deep-merged with the rest."""
        data = dict(getattr(self.spec, name))
        file = data.pop("config", None)
        base: dict = {}
        if file:
            fp = Path(self.find(file))
            if not fp.is_file():
                raise ConfigError(f"pipeline {self.path}: {name}.config {file} not found")
            base = read_yaml(fp)
            if name in base and isinstance(base[name], dict):
                base = base[name]
        return validate(model, deep_merge(base, data), f"{self.path} [{name}]")

    def stages(self) -> list[str]:
        """Stages to run; ``explain`` rides with ``predict`` (one streaming pass)."""
        return [s for s in self.spec.stages if s != "explain"]

    @property
    def explain(self) -> bool:
        return "explain" in self.spec.stages
