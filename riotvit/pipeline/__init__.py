"""Declarative pipelines: ``riotvit run pipelines/demo.yaml`` and ``riotvit demo``.

Stages run in order (sample -> tile -> join -> train -> evaluate -> predict, with explain riding
on predict's streaming pass). Each stage is keyed by its config and the content hashes of its
inputs (see :mod:`riotvit.pipeline.manifest`); a rerun skips stages whose key is unchanged and
whose outputs exist, and ``from_stage`` forces a rerun from there on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from riotvit.errors import ConfigError
from riotvit.pipeline.manifest import Manifest
from riotvit.pipeline.spec import STAGES, Pipeline, PipelineSpec
from riotvit.pipeline.stages import PLANS
from riotvit.progress import NullReporter

__all__ = ["Pipeline", "PipelineSpec", "PipelineResult", "StageRecord", "run_pipeline", "STAGES"]


@dataclass
class StageRecord:
    name: str
    status: str  # "ran" | "skipped"
    seconds: float
    summary: dict = field(default_factory=dict)


@dataclass
class PipelineResult:
    run: Path
    stages: list[StageRecord]
    seconds: float

    def record(self, name: str) -> StageRecord | None:
        return next((s for s in self.stages if s.name == name), None)


def _stage_arg(pipe: Pipeline, names: list[str], value: str | None, option: str) -> str | None:
    if value is None:
        return None
    if value not in STAGES:
        raise ConfigError(f"{option} {value}: unknown stage; choose one of {', '.join(STAGES)}")
    value = "predict" if value == "explain" else value
    if value not in names:
        raise ConfigError(f"{option} {value}: the pipeline {pipe.path} runs only {', '.join(names)}")
    return value


def run_pipeline(
    pipeline: str | Path | Pipeline,
    out: str | Path | None = None,
    *,
    from_stage: str | None = None,
    until: str | None = None,
    sets: list[str] | None = None,
    reporter: Callable[[str], Any] | None = None,
    on_stage: Callable[[str, str], None] | None = None,
) -> PipelineResult:
    """Run a pipeline file into its run folder.

    Args:
        pipeline: the YAML file (or a loaded :class:`Pipeline`).
        out: run folder (default: the file's ``out``, else ``runs/<name>``).
        from_stage: force this stage and every later one to rerun.
        until: stop after this stage.
        sets: ``KEY=VALUE`` overrides of the pipeline file (``sources.acled=my.csv``).
        reporter: ``stage name -> progress reporter`` (default: none).
        on_stage: called with (stage, "start" | "skip") as the run goes.

    Raises:
        ConfigError: an unknown stage, a bad pipeline file.
        OutputExistsError: a stage's output path holds a file the pipeline did not write (named;
            left as it is).
        RiotvitError: whatever a stage raises (the run folder keeps the stages before it).
    """
    pipe = pipeline if isinstance(pipeline, Pipeline) else Pipeline.load(pipeline, out, sets)
    names = pipe.stages()
    from_stage, until = (_stage_arg(pipe, names, v, opt) for v, opt in ((from_stage, "--from"), (until, "--until")))
    if from_stage is not None and until is not None and names.index(from_stage) > names.index(until):
        raise ConfigError(f"--from {from_stage} comes after --until {until}: nothing would run; "
                          f"give a --from at or before --until (stages: {', '.join(names)})")
    if until is not None:
        names = names[: names.index(until) + 1]

    pipe.run.mkdir(parents=True, exist_ok=True)
    man = Manifest(pipe.run)
    forced = False
    records: list[StageRecord] = []
    t0 = time.perf_counter()
    for name in names:
        forced = forced or name == from_stage
        call = PLANS[name](pipe)
        key, hashes = man.key(name, call.config, call.inputs)
        if not forced and man.fresh(name, key, call.outputs):
            records.append(StageRecord(name, "skipped", 0.0, man.data["stages"][name].get("summary", {})))
            if on_stage:
                on_stage(name, "skip")
            continue
        man.check_owned(call.owned)  # a user's file in an output path: stop, don't replace it
        if on_stage:
            on_stage(name, "start")
        man.pending(name, call.owned)
        t = time.perf_counter()
        summary = call.run(reporter(name) if reporter else NullReporter())
        sec = time.perf_counter() - t
        man.record(name, key, call.config, hashes, call.outputs, sec, summary, call.owned)
        records.append(StageRecord(name, "ran", sec, summary))
    return PipelineResult(pipe.run, records, time.perf_counter() - t0)
