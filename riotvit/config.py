"""Typed configuration: pydantic models loaded from YAML.

Every stage has one config model (``TileConfig``, ``JoinConfig`` ...). The same model is filled
from a YAML file (``--config``), from CLI options (which win), or from a pipeline file. Unknown
keys are errors that name the file and suggest the closest key. YAML is read with
``yaml.safe_load`` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from riotvit.errors import ConfigError, suggest

M = TypeVar("M", bound="StrictModel")


class StrictModel(BaseModel):
    """Base for every config: unknown keys are errors, every field has a description."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())

    @classmethod
    def field_help(cls, name: str) -> str:
        """The field's description, used as CLI help text."""
        info = cls.model_fields[name]
        return info.description or ""


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping with ``yaml.safe_load``; errors name the file and the fix."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found; check the path or drop --config")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{p}{where}: not valid YAML ({getattr(e, 'problem', e)}); fix the syntax") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: a config must be a mapping of key: value, got {type(data).__name__}")
    return data


def format_validation_error(model: type[BaseModel], err: ValidationError, source: str) -> str:
    """Turn a pydantic error into one line that names the source, the key and the fix."""
    parts = []
    for e in err.errors()[:3]:
        loc = ".".join(str(x) for x in e["loc"])
        if e["type"] == "extra_forbidden":
            key = str(e["loc"][-1])
            fields = _fields_at(model, e["loc"][:-1])
            parts.append(f"unknown key '{loc}'{suggest(key, fields)}")
        else:
            parts.append(f"'{loc}': {e['msg']} (got {e.get('input')!r})")
    more = f" (+{len(err.errors()) - 3} more)" if len(err.errors()) > 3 else ""
    return f"{source}: " + "; ".join(parts) + more


def _fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    m: Any = model
    for key in loc:
        info = getattr(m, "model_fields", {}).get(key)
        if info is None:
            return []
        m = info.annotation
    return list(getattr(m, "model_fields", {}).keys())


def build_config(
    model: type[M],
    config_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    section: str | None = None,
) -> M:
    """Build ``model`` from an optional YAML file, then apply non-None ``overrides`` on top.

    Args:
        model: the config class.
        config_file: a YAML file; if ``section`` is given and the file has that top-level key,
            only that part is used (so one file can configure several stages).
        overrides: values from the CLI; ``None`` means "not given".
        section: optional top-level key to read from the file.
    """
    data: dict[str, Any] = {}
    source = "options"
    if config_file is not None:
        data = read_yaml(config_file)
        if section and section in data and isinstance(data[section], dict):
            data = data[section]
        source = str(config_file)
    for k, v in (overrides or {}).items():
        if v is not None:
            data[k] = v
            if config_file is None:
                source = "options"
    return validate(model, data, source)


def validate(model: type[M], data: Mapping[str, Any], source: str) -> M:
    """``model`` from ``data``; a validation error becomes one ConfigError line naming ``source``."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(model, e, source)) from None


def project_file(rel: str) -> Path:
    """A project file or folder (``data_catalog``, ``pipelines/demo.yaml``, ``configs/...``): from the
    working directory when it is there, else from the riotvit checkout the package lives in."""
    here = Path.cwd() / rel
    return here if here.exists() else Path(__file__).resolve().parents[1] / rel


def dump_config(cfg: BaseModel) -> dict[str, Any]:
    """A JSON/YAML-safe dict of a config (paths as strings)."""
    return cfg.model_dump(mode="json")
