"""Option help comes from the config fields, so a default or a description is written once and cannot drift."""

from __future__ import annotations

import re

import pytest
import typer
from typer import rich_utils
from typer.testing import CliRunner

from riotvit.cli import app
from riotvit.cli._common import config_field
from riotvit.config import default_text, field_info, literal_choices

runner = CliRunner()


def _commands(group=None, path=()):
    """(command path, click command) of every command, catalog subcommands included."""
    group = group or typer.main.get_command(app)
    for name, cmd in group.commands.items():
        if getattr(cmd, "commands", None):
            yield from _commands(cmd, (*path, name))
        else:
            yield (*path, name), cmd


def _config_options(cmd):
    """(option name, config class, field, CLI note) of each option documented by a config field."""
    return [(p.opts[0], *config_field(p.help)) for p in cmd.params if config_field(p.help)]


COMMANDS = {" ".join(path): cmd for path, cmd in _commands()}
# Every command whose options map onto a config: (command, how many options, at least).
EXPECTED = {"sample": 3, "tile": 12, "join": 10, "train": 8, "predict": 8, "explain": 8, "demo": 1,
            "catalog list": 1, "catalog show": 1, "catalog validate": 1}


def _flat(text: str) -> str:
    """Help text without the panel borders and line breaks of rich."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


@pytest.fixture
def wide(monkeypatch):
    monkeypatch.setattr(rich_utils, "MAX_WIDTH", 2000)


@pytest.mark.parametrize("command", sorted(EXPECTED))
def test_every_config_option_shows_the_config_description_and_default(command, wide):
    options = _config_options(COMMANDS[command])
    assert len(options) >= EXPECTED[command], options
    r = runner.invoke(app, [*command.split(), "--help"])
    assert r.exit_code == 0, r.output
    out = _flat(r.output)
    for opt, model, field, note in options:
        info = field_info(model, field)
        help_text = _flat(model.field_help(field, note))
        assert info.description and help_text.startswith(_flat(info.description)), (opt, field)
        assert re.search(re.escape(opt) + r"\b.*?" + re.escape(help_text), out), f"{command} {opt}: {help_text!r} not in help"
        default = default_text(info)
        if default is not None:
            assert f"[default: {default}]" in help_text
        for choice in literal_choices(info.annotation):
            assert str(choice) in help_text


def test_no_default_is_typed_by_hand_for_a_config_option():
    """A ``[default: …]`` in an option's own help text is only allowed where no config field documents it."""
    for name, cmd in COMMANDS.items():
        for p in cmd.params:
            if config_field(p.help) is None and p.help and "[default:" in p.help:
                assert p.name == "out" and name == "run", f"{name} {p.opts[0]}: hand-typed default; use config_option"


def test_defaults_read_as_typed():
    from riotvit.join.stage import JoinConfig
    from riotvit.synth import SampleConfig
    from riotvit.tile.plan import TileConfig

    assert TileConfig.field_help("crop_m").endswith("[default: 672]")
    assert SampleConfig.field_help("dates").endswith("[default: 2019-06-15,2020-06-15,2021-06-15,2022-06-15]")
    assert JoinConfig.field_help("riot_event_types").endswith("[default: Riots]")
    assert "[default" not in JoinConfig.field_help("census.extensive")  # an empty list: nothing to show
    assert "[default" not in TileConfig.field_help("stride_m")  # None: the description says what it means


def test_help_is_built_without_the_heavy_libraries_until_asked():
    """The config modules (rasterio, torch ...) load only when --help is shown, not on import."""
    tile = [p for p in COMMANDS["tile"].params if p.name == "crop_m"][0]
    assert tile.help.startswith("riotvit-config-field:")


def test_every_command_with_config_options_is_checked_here():
    """A new command that documents options by config fields is listed in EXPECTED (so its help is checked)."""
    documented = {name for name, cmd in COMMANDS.items() if _config_options(cmd)}
    assert documented == set(EXPECTED)
