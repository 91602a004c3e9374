"""The exploration notebook runs top to bottom without an error."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "samples" / "explore.ipynb"


def test_notebook_executes_without_errors(tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("matplotlib")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
    assert "synack.ingest." not in code and "synack.inventory." not in code  # the public API only
    temp = Path(tempfile.gettempdir())
    before = set(temp.glob("synack-notebook-*"))
    env_store = os.environ.pop("SYNACK_STORE", None)
    try:
        client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                         resources={"metadata": {"path": str(NOTEBOOK.parents[1])}})  # fmt: skip
        client.execute()
    finally:
        if env_store is not None:
            os.environ["SYNACK_STORE"] = env_store
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "\n".join(str(o.get("data", {}).get("text/plain", "")) + o.get("text", "") for o in outputs)
    assert "10.1.0.11" in text and "8443" in text  # the new port of the last day
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the per-day plot
    assert set(temp.glob("synack-notebook-*")) == before  # its store went with the kernel


def _run_notebook() -> str:
    """Run the notebook (on the store SYNACK_STORE names); assert no cell failed; return its text outputs."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("matplotlib")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parents[1])}}).execute()  # fmt: skip
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    return "\n".join(str(o.get("data", {}).get("text/plain", "")) + o.get("text", "") for o in outputs)


def test_notebook_runs_on_another_store_with_its_own_days(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from synack.ingest.conn_ingest import ingest_paths
    from tests.conftest import conn_header, conn_line, write_log

    october = 1791158400.0  # 2026-10-05 00:00 UTC: not a sample day
    lines = [conn_line(f"C{i}", ts=october + i * 43200, resp=f"10.9.0.{i}", resp_p=8000 + i) for i in range(4)]
    store = tmp_path / "store"
    ingest_paths([write_log(tmp_path / "logs" / "conn.log", conn_header() + "".join(lines))], store)
    monkeypatch.setenv("SYNACK_STORE", str(store))
    text = _run_notebook()
    assert "2026-10-06" in text and "10.9.0.3" in text and "8003" in text  # its last day's new port


def test_notebook_runs_on_a_store_of_the_zeek_corpus(
    zeek_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The notebook on a store of real Zeek logs (the reference corpus's conn logs, many years apart)."""
    from synack.ingest.conn_ingest import ingest_paths
    from synack.inventory import Inventory

    store = tmp_path / "store"
    assert not ingest_paths(sorted(zeek_corpus.glob("*/zeek8-conn.log")), store).errors
    last_day = Inventory(store).status()["last_day"]
    monkeypatch.setenv("SYNACK_STORE", str(store))
    text = _run_notebook()
    assert last_day in text
