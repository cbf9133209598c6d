"""The quickstart notebook runs top to bottom (library API, inline plots), so it never goes stale."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def test_quickstart_notebook_executes(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("RIOTVIT_NB_WORK", str(tmp_path / "work"))
    monkeypatch.setenv("RIOTVIT_NB_SIZE_KM", "4")
    monkeypatch.setenv("RIOTVIT_NB_EPOCHS", "4")
    nb = nbformat.read(REPO / "notebooks" / "quickstart.ipynb", as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 2  # the city and the risk/attribution maps, inline
    text = "".join(o.get("text", "") for o in outputs)
    assert "riot crops" in text and "crops/s" in text and "completeness" in text
    assert (tmp_path / "work" / "predict" / "risk.tif").is_file()
    assert (tmp_path / "work" / "predict" / "riotvit.qgs").is_file()
