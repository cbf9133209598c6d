"""riotvit: riot risk mapped from space.

The library is organised like the pipeline (see docs/design.md): one package per stage,
named like its command (``synth``, ``tile``, ``join``, ``train``, ``predict``, ``explain``),
``publish`` for user-facing outputs, ``pipeline`` and ``cli``; shared pieces at the top
(``grid``, ``config``, ``errors``, ``io``, ``device``, ``catalog``). Heavy modules (torch,
shap) are imported lazily so that ``import riotvit`` and ``riotvit --help`` stay fast.

The public API is as easy as the CLI; every stage is one call with one config::

    import riotvit

    sample = riotvit.generate_sample("work/sample", riotvit.SampleConfig(size_km=6))
    tiles = riotvit.tile([sample.path / "city.tif"], "work/tiles", riotvit.TileConfig(crop_px=64))
    joined = riotvit.join(tiles.path, sample.path / "acled.csv", sample.path / "wards.gpkg",
                          "work/samples.parquet", riotvit.JoinConfig(block_m=2688))
    model = riotvit.train(tiles.path, joined.path, "work/model", riotvit.TrainConfig())
    report, bundle = riotvit.evaluate(model.path)
    region = riotvit.resolve_region("438000,9700000,444000,9706000", "EPSG:32737")  # or a vector file
    pred = riotvit.predict(model.path, region, "work/predict", imagery=[riotvit.SourceSpec(sample.path / "city.tif")])
    bundle = riotvit.load_bundle(model.path)

``riotvit.tile`` etc. are the stage packages, callable as their stage function.
"""

from riotvit import explain, join, predict, tile, train
from riotvit.errors import RiotvitError
from riotvit.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "SampleConfig": "riotvit.synth",
    "generate_sample": "riotvit.synth",
    "TileConfig": "riotvit.tile.plan",
    "SourceSpec": "riotvit.tile.plan",
    "TileSet": "riotvit.tile.tileset",
    "JoinConfig": "riotvit.join.stage",
    "read_samples": "riotvit.join.stage",
    "TrainConfig": "riotvit.train.config",
    "Bundle": "riotvit.train.bundle",
    "PredictConfig": "riotvit.predict.plan",
    "Region": "riotvit.predict.region",
    "resolve_region": "riotvit.predict.region",
    "ExplainConfig": "riotvit.explain.stage",
    "run_pipeline": "riotvit.pipeline",
    "build_config": "riotvit.config",
}
_FUNCTIONS = {"evaluate": ("riotvit.train.evaluate", "evaluate_bundle"), "load_bundle": ("riotvit.train.bundle", "Bundle")}
_lazy = lazy_exports(__name__, _EXPORTS)


def __getattr__(name: str):
    if name in _FUNCTIONS:
        import importlib

        mod, attr = _FUNCTIONS[name]
        obj = getattr(importlib.import_module(mod), attr)
        return obj.open if name == "load_bundle" else obj
    return _lazy(name)


__all__ = ["RiotvitError", "__version__", "tile", "join", "train", "predict", "explain", "evaluate", "load_bundle",
           *_EXPORTS]
