"""The last-resort handler, the YAML loader bound and the -q/warnings split, tested directly."""

from __future__ import annotations

import time

import pytest
import typer
from typer.testing import CliRunner

from riotvit.cli._common import RichReporter, handle_errors
from riotvit.config import load_yaml
from riotvit.errors import ConfigError, clip

runner = CliRunner()


def _app(fn) -> typer.Typer:
    app = typer.Typer()
    app.command("x")(handle_errors(fn))

    @app.callback()
    def _root() -> None: ...

    return app


def _run(fn, *argv: str, env: dict | None = None):
    return runner.invoke(_app(fn), ["x", *argv], env=env)


def test_an_unexpected_error_is_one_line_asking_for_a_report():
    def tile_command() -> None:
        raise ValueError("boom\nsecond line")

    r = _run(tile_command)
    err = r.stderr.strip()
    assert r.exit_code == 1 and len(err.splitlines()) == 1 and "Traceback" not in r.output
    assert "riotvit tile" in err and "please report it" in err and "--debug" in err


def test_riotvit_debug_env_prints_the_traceback():
    def tile_command() -> None:
        raise ValueError("boom")

    r = _run(tile_command, env={"RIOTVIT_DEBUG": "1"})
    assert r.exit_code == 1 and "Traceback" in r.stderr


@pytest.mark.parametrize(("exc", "words"), [
    (NotADirectoryError(20, "Not a directory", "/x/out"), "/x/out"),
    (PermissionError(13, "Permission denied", "/x/p"), "permission denied"),
    (OSError(28, "No space left on device", "/x/big"), "no space left"),
])
def test_user_oserrors_are_one_line_naming_the_path(exc, words):
    def join_command() -> None:
        raise exc

    r = _run(join_command)
    assert r.exit_code == 2 and words in r.stderr.lower() and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(("name", "says"), [("predict_command", "nothing was published"),
                                            ("tile_command", "OUT.partial")])
def test_an_interrupt_says_only_what_is_true(name, says):
    def fn() -> None:
        raise KeyboardInterrupt

    fn.__name__ = name
    r = _run(fn)
    assert r.exit_code == 130 and says in r.stderr


def test_notes_are_dropped_when_the_command_fails_and_warnings_survive_quiet():
    def train_command() -> None:
        rep = RichReporter(quiet=True)
        rep.log("training on 3 crops")
        rep.log("warning: few pixels")
        raise ConfigError("bad thing")

    r = _run(train_command)
    lines = r.stderr.strip().splitlines()
    assert lines[0].startswith("warning: few pixels") and lines[-1] == "error: bad thing" and len(lines) == 2


def test_an_alias_bomb_is_refused_fast():
    levels = ["a: &a [" + ",".join(["x"] * 9) + "]"]
    for prev, cur in zip("abcdefgh", "bcdefghi", strict=True):
        levels.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    t = time.perf_counter()
    with pytest.raises(ConfigError, match="bomb.yaml"):
        load_yaml("\n".join(levels) + "\n", "bomb.yaml")
    assert time.perf_counter() - t < 2


def test_yaml_tags_are_refused():
    with pytest.raises(ConfigError, match="tags"):
        load_yaml("x: !!python/object/apply:os.system ['true']", "s.yaml")


def test_clip_never_renders_a_huge_value():
    assert len(clip(list(range(10**6)))) <= 80 and len(clip("x" * 10**6)) <= 80


def test_user_folders_named_like_riotvits_working_folders_are_never_deleted(tmp_path):
    """A user's NAME.partial or NAME.old folder next to --out is left alone: riotvit refuses or works around it."""
    import pytest as _pytest

    from riotvit.errors import OutputExistsError
    from riotvit.io import atomic_dir

    mine = tmp_path / "out.partial"
    mine.mkdir()
    (mine / "notes.txt").write_text("user file")
    with _pytest.raises(OutputExistsError, match="did not make"), atomic_dir(tmp_path / "out"):
        pass
    assert (mine / "notes.txt").read_text() == "user file"
    old = tmp_path / "x.old"
    old.mkdir()
    (old / "backup.txt").write_text("keep")
    for _ in range(2):  # the second run replaces the first: no NAME.old folder of the user's is touched
        with atomic_dir(tmp_path / "x", overwrite=True) as work:
            (work / "a.txt").write_text("a")
    assert (old / "backup.txt").read_text() == "keep"
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == ["a.txt"]  # no marker published
