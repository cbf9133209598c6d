"""``riotvit catalog list|show|validate``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from riotvit.cli._common import (
    PIPELINE,
    ConfigHelpCommand,
    config_option,
    console,
    handle_errors,
    out_console,
    print_json,
)

app = typer.Typer(help="Browse and check the data catalog (data_catalog/*.yaml).", no_args_is_help=True)
CatalogOpt = Annotated[Path | None, config_option(PIPELINE, "catalog", "--catalog")]


@app.command("list", cls=ConfigHelpCommand)
@handle_errors
def list_command(catalog: CatalogOpt = None, kind: Annotated[str | None, typer.Option(help="raster|acled|census|region")] = None,
                 json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List catalog entries: id, kind, whether the file is present, description.

    Example: riotvit catalog list --kind raster
    """
    from riotvit.catalog import Catalog

    cat = Catalog.load(catalog)
    rows = []
    for i in cat.ids(kind):
        r = cat.entries[i]
        present = "yes" if r.path is None or r.path.exists() else "no"
        rows.append({"id": i, "kind": r.entry.kind, "present": present, "path": str(r.path or ""), "description": r.entry.description})
    if json_out:
        print_json(rows)
        return
    t = Table(title=f"catalog {cat.root}")
    for c in ("id", "kind", "present", "description"):
        t.add_column(c, overflow="fold")
    for row in rows:
        t.add_row(row["id"], row["kind"], "[green]yes[/]" if row["present"] == "yes" else "[red]no[/]", row["description"])
    out_console.print(t)
    for err in cat.load_errors.values():
        console.print(f"[red]broken entry[/] {escape(err)}", highlight=False, soft_wrap=True)


@app.command("show", cls=ConfigHelpCommand)
@handle_errors
def show_command(entry_id: Annotated[str, typer.Argument(help="Entry id.")], catalog: CatalogOpt = None) -> None:
    """Show one entry with its resolved path.

    Example: riotvit catalog show sample_city
    """
    from riotvit.catalog import Catalog

    r = Catalog.load(catalog).get(entry_id)
    d = r.entry.model_dump(mode="json", exclude_none=True)
    d["resolved_path"] = str(r.path) if r.path else None
    d["file_present"] = bool(r.path and r.path.exists()) if r.path else None
    d["entry_file"] = str(r.file)
    print_json(d)


@app.command("validate", cls=ConfigHelpCommand)
@handle_errors
def validate_command(catalog: CatalogOpt = None, ids: Annotated[list[str] | None, typer.Argument(help="Entries to check (default: all).")] = None,
                     strict: Annotated[bool, typer.Option("--strict", help="Also fail on entries whose file is absent.")] = False) -> None:
    """Check entries against their files: missing file, CRS, band count, nodata, census columns.

    Exits 1 if any entry is broken. Entries whose file is simply absent (e.g. real data not
    downloaded) are reported as missing and only fail with --strict.

    Example: riotvit catalog validate
    """
    from riotvit.catalog import Catalog, validate_entry

    cat = Catalog.load(catalog)
    bad = 0
    for f, err in cat.load_errors.items():
        console.print(f"[red]BROKEN[/]  {f}: {escape(err)}", highlight=False, soft_wrap=True)
        bad += 1
    for i in ids or cat.ids():
        r = cat.get(i)
        problems = validate_entry(r, cat)
        if not problems:
            console.print(f"[green]ok[/]      {i}")
        elif problems[0].startswith("missing file") and not strict:
            console.print(f"[yellow]missing[/] {i}: {escape(problems[0])}", highlight=False, soft_wrap=True)
        else:
            bad += 1
            for p in problems:
                console.print(f"[red]BROKEN[/]  {i}: {escape(p)}", highlight=False, soft_wrap=True)
    if bad:
        raise typer.Exit(1)
