"""Every ``--help`` runs, and every ``riotvit`` example in the README and the commands' help names a
real command with options that command takes (and no more positional arguments than it takes)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from riotvit.cli import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()
GROUP = typer.main.get_command(app)


def _commands(group, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], object]]:
    out = []
    for name, cmd in sorted(group.commands.items()):
        out.append(((*path, name), cmd))
        if hasattr(cmd, "commands"):
            out += _commands(cmd, (*path, name))
    return out


COMMANDS = _commands(GROUP)


def _examples(text: str) -> list[str]:
    """``riotvit ...`` lines of code blocks (continuation lines joined), comments stripped."""
    lines, out, in_code = text.splitlines(), [], False
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("```"):
            in_code = not in_code
        elif in_code and line.startswith("riotvit "):
            while line.endswith("\\") and i + 1 < len(lines):
                i += 1
                line = line[:-1] + " " + lines[i].strip()
            out.append(line)
        i += 1
    return out


def _help_examples(path: tuple[str, ...], cmd) -> list[str]:
    """The example lines of a command's help (lines starting with ``riotvit``, a trailing "  (note)" dropped)."""
    text = f"{cmd.help or ''}\n{getattr(cmd, 'epilog', None) or ''}"
    return [re.sub(r"\s{2,}\(.*\)$", "", ln.strip()) for ln in text.splitlines() if ln.strip().startswith("riotvit ")]


def _check(example: str) -> None:
    tokens = shlex.split(example, comments=True)[1:]
    cmd = GROUP  # typer's group (click-like: .commands, .params)
    while hasattr(cmd, "commands") and tokens and not tokens[0].startswith("-"):
        assert tokens[0] in cmd.commands, f"{example!r}: no command {tokens[0]!r}"
        cmd, tokens = cmd.commands[tokens[0]], tokens[1:]
    opts: dict[str, object] = {}
    for p in cmd.params:
        for o in [*p.opts, *p.secondary_opts]:
            opts[o] = p
    positional, skip = 0, False
    for t in tokens:
        if skip:
            skip = False
            continue
        if t.startswith("-") and len(t) > 1 and not re.fullmatch(r"-?\d+(\.\d+)?(,.*)?", t):
            name = t.split("=", 1)[0]
            assert name in opts or name == "--help", f"{example!r}: {cmd.name} has no option {name}"
            p = opts.get(name)
            skip = p is not None and not getattr(p, "is_flag", False) and not getattr(p, "count", False) and "=" not in t
        elif t not in ("...", "…"):
            positional += 1
    args = [p for p in cmd.params if getattr(p, "param_type_name", "") == "argument"]
    if not any(p.nargs == -1 for p in args):
        assert positional <= len(args), f"{example!r}: {cmd.name} takes {len(args)} arguments, given {positional}"


def test_every_command_has_a_help_that_runs():
    assert len(COMMANDS) >= 10
    for path, _cmd in COMMANDS:
        r = runner.invoke(app, [*path, "--help"])
        assert r.exit_code == 0, (path, r.output)
        assert "Usage" in r.output and len(r.output.splitlines()) > 5


def _inline(text: str) -> list[str]:
    """Inline ``riotvit ...`` code spans: ``[--opt X]`` brackets dropped, ``a|b`` alternatives as the first."""
    out = []
    for span in re.findall(r"`(riotvit [^`]+)`", text):
        span = re.sub(r"(\w+)(\\?\|\w+)+", r"\1", span.replace("[", " ").replace("]", " "))
        if "..." in span.split()[1:2] or "…" in span:
            continue  # "riotvit --debug …": a pattern, not a command line
        out.append(span)
    return out


def test_readme_examples_name_real_commands_and_options():
    text = (ROOT / "README.md").read_text()
    examples = _examples(text)
    assert len(examples) >= 12
    for e in examples:
        _check(e)
    spans = _inline(text)
    assert len(spans) >= 15
    for e in spans:
        if e.split()[1] in GROUP.commands or e.split()[1].startswith("-"):
            _check(e)


@pytest.mark.parametrize("doc", ["CONTRIBUTING.md", "docs/design.md", "bench/README.md", "docs/formats.md"])
def test_other_docs_examples_name_real_commands_and_options(doc):
    path = ROOT / doc
    if not path.exists():
        pytest.skip(f"{doc} absent")
    for e in _examples(path.read_text()):
        _check(e)


def test_help_examples_name_real_commands_and_options():
    n = 0
    for path, cmd in [((), GROUP), *COMMANDS]:
        for e in _help_examples(path, cmd):
            _check(e)
            n += 1
    assert n >= 10  # the commands show examples


def test_a_wrong_example_is_caught():
    with pytest.raises(AssertionError, match="no option --nope"):
        _check("riotvit tile a.tif --out x --nope 3")
    with pytest.raises(AssertionError, match="no command"):
        _check("riotvit tiles a.tif --out x")
