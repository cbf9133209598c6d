"""Typed configuration: pydantic models loaded from YAML.

Every stage has one config model (``TileConfig``, ``JoinConfig`` ...). The same model is filled
from a YAML file (``--config``), from CLI options (which win), or from a pipeline file. Unknown
keys are errors that name the file and suggest the closest key. YAML is read with
``yaml.safe_load`` only.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.fields import FieldInfo

from riotvit.errors import ConfigError, clip, suggest

M = TypeVar("M", bound="StrictModel")


class StrictModel(BaseModel):
    """Base for every config: unknown keys are errors, every field has a description."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())

    @classmethod
    def field_help(cls, name: str, note: str = "") -> str:
        """CLI help text of a field: its description, its choices and its default.

        Args:
            name: a field name, or a dotted path into nested configs (``model.backbone``).
            note: text put after the description, e.g. how the option is written on the command line.

        Returns:
            e.g. ``"Crop side on the ground, metres. [default: 672]"``. A ``None`` or boolean
            default is left out: the description says what ``None`` means, and a flag is off
            unless given.
        """
        info = field_info(cls, name)
        text = " ".join(t for t in (info.description or "", note) if t)
        choices = literal_choices(info.annotation)
        if choices:
            text += f" [choices: {' | '.join(map(str, choices))}]"
        default = default_text(info)
        if default is not None:
            text += f" [default: {default}]"
        return text


def field_info(model: type[BaseModel], name: str) -> FieldInfo:
    """The field behind a dotted path (``model.backbone``) of ``model``.

    Raises:
        KeyError: no such field.
    """
    *parents, last = name.split(".")
    m: Any = model
    for key in parents:
        m = m.model_fields[key].annotation
    return m.model_fields[last]


def literal_choices(annotation: Any) -> tuple[Any, ...]:
    """The allowed values of a ``Literal`` (also inside ``X | None``); empty for other types."""
    if get_origin(annotation) is Literal:
        return get_args(annotation)
    return tuple(v for a in get_args(annotation) for v in literal_choices(a))


def default_text(info: FieldInfo) -> str | None:
    """A field's default as a user types it (``672``, ``Riots``, ``2022-06-15``); ``None`` when it has
    no default worth printing (``None``, an empty list, a flag, a nested config)."""
    value = info.get_default(call_default_factory=True)
    if value is None or value == [] or isinstance(value, (bool, BaseModel)):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


MAX_YAML_NODES = 100_000
"""How many nodes a YAML document may expand to, aliases counted at their full size: a config is a
few hundred; an "alias bomb" (anchors referencing anchors) expands to billions and must not hang."""


class _BoundedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses documents whose aliases expand past ``MAX_YAML_NODES``."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._expanded = 0
        self._sizes: dict[int, int] = {}

    def _size(self, node: yaml.Node) -> int:
        key = id(node)
        if key not in self._sizes:
            self._sizes[key] = 1  # a recursive alias counts once, it is not expanded here
            if isinstance(node, yaml.SequenceNode):
                self._sizes[key] = 1 + sum(self._size(n) for n in node.value)
            elif isinstance(node, yaml.MappingNode):
                self._sizes[key] = 1 + sum(self._size(k) + self._size(v) for k, v in node.value)
        return self._sizes[key]

    def compose_node(self, parent: Any, index: Any) -> Any:
        alias = self.check_event(yaml.AliasEvent)
        node = super().compose_node(parent, index)
        self._expanded += self._size(node) if alias else 1
        if self._expanded > MAX_YAML_NODES:
            raise yaml.YAMLError(f"the document expands to more than {MAX_YAML_NODES:,} values through "
                                 "aliases (&anchor/*alias); write the values out")
        return node


def load_yaml(text: str, source: str) -> Any:
    """Parse YAML text safely: no tags beyond plain YAML, aliases bounded (:data:`MAX_YAML_NODES`).

    Raises:
        ConfigError: not valid YAML, a ``!!python/...`` tag, or an alias bomb; names ``source``.
    """
    try:
        return yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        if isinstance(e, yaml.constructor.ConstructorError) and "tag" in str(problem):
            problem = f"{problem}; tags such as !!python/... are not allowed"
        raise ConfigError(f"{source}{where}: not valid YAML ({clip(problem, 160)}); fix the syntax") from None
    except RecursionError:
        raise ConfigError(f"{source}: YAML nested too deeply; flatten it") from None


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping safely (:func:`load_yaml`); errors name the file and the fix."""
    p = Path(path)
    if not p.is_file():
        what = "a folder, not a config file" if p.is_dir() else "config file not found"
        raise ConfigError(f"{p}: {what}; check the path or drop --config")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p}: not UTF-8 text (byte {e.start}); save it as UTF-8") from None
    except OSError as e:
        raise ConfigError(f"{p}: cannot be read ({e.strerror}); check its permissions") from None
    data = load_yaml(text, str(p))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: a config must be a mapping of key: value, got {type(data).__name__}")
    return data


def format_validation_error(model: type[BaseModel], err: ValidationError, source: str,
                            labels: Mapping[str, str] | None = None) -> str:
    """Turn a pydantic error into one line that names the source, the key and the fix.

    Args:
        model: the config class that was validated.
        err: pydantic's error.
        source: where the data came from (a file name, ``options``).
        labels: how to name a key the user gave as an option, e.g. ``{"tta": "--tta"}``; an error
            at such a key reads ``--tta: must be one of 1, 2, 4, 8 (got 3)``, without ``source``.
    """
    labels = labels or {}
    parts, labelled = [], True
    for e in err.errors()[:3]:
        loc = ".".join(str(x) for x in e["loc"])
        label = labels.get(loc)
        labelled = labelled and label is not None
        if e["type"] == "extra_forbidden":
            key = str(e["loc"][-1])
            fields = _fields_at(model, e["loc"][:-1])
            parts.append(f"unknown key '{clip(loc)}'{suggest(key, fields)}")
        elif isinstance(e.get("input"), Mapping):  # a whole section failed a check across its keys
            parts.append(f"{label or repr(loc)}: {_message(e)}" if loc else _message(e))
        else:
            parts.append(f"{label or repr(loc)}: {_message(e)} (got {_got(e.get('input'))})")
    more = f" (+{len(err.errors()) - 3} more)" if len(err.errors()) > 3 else ""
    return ("" if labelled else f"{source}: ") + "; ".join(parts) + more


def _got(value: Any) -> str:
    """A rejected value for a message: its repr, cut to 80 characters."""
    return clip(repr(value) if isinstance(value, str) else value)


def _message(e: Any) -> str:
    """pydantic's message, with a choice among values as ``must be one of a, b, c`` and without the
    ``Value error,`` of our own validators."""
    if e["type"] == "literal_error":
        expected = str(e.get("ctx", {}).get("expected", ""))
        values = re.split(r", | or ", expected)
        return "must be one of " + ", ".join(v.strip("'") for v in values)
    return str(e["msg"]).removeprefix("Value error, ")


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
    labels: Mapping[str, str] | None = None,
) -> M:
    """Build ``model`` from an optional YAML file, then apply non-None ``overrides`` on top.

    Args:
        model: the config class.
        config_file: a YAML file; if ``section`` is given and the file has that top-level key,
            only that part is used (so one file can configure several stages).
        overrides: values from the CLI; ``None`` means "not given".
        section: optional top-level key to read from the file.
        labels: option names of the overrides for error messages (``{"tta": "--tta"}``).
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
    return validate(model, data, source, labels)


def validate(model: type[M], data: Mapping[str, Any], source: str, labels: Mapping[str, str] | None = None) -> M:
    """``model`` from ``data``; a validation error becomes one ConfigError line naming ``source``
    (or the option, for keys in ``labels``)."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(model, e, source, labels)) from None


def project_file(rel: str) -> Path:
    """A project file or folder (``data_catalog``, ``pipelines/demo.yaml``, ``configs/...``): from the
    working directory when it is there, else from the riotvit checkout the package lives in."""
    here = Path.cwd() / rel
    return here if here.exists() else Path(__file__).resolve().parents[1] / rel


def dump_config(cfg: BaseModel) -> dict[str, Any]:
    """A JSON/YAML-safe dict of a config (paths as strings)."""
    return cfg.model_dump(mode="json")
