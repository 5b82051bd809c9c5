"""The notebook runs top to bottom, headless (nbclient), in this environment's own kernel."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "soundslike.ipynb"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def test_notebook_is_short_and_saved_without_outputs():
    import nbformat

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert 2 <= len(code) <= 4, "logic belongs in soundslike_nb/app, not in cells"
    assert all(len(cell.source.splitlines()) <= 12 for cell in code)
    assert all(not cell.outputs and cell.execution_count is None for cell in code)
    assert notebook.metadata.kernelspec.name == "python3"


@pytest.mark.slow
def test_notebook_executes_top_to_bottom():
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # One extra cell, in memory only: which Python ran the notebook.
    notebook.cells.append(nbformat.v4.new_code_cell("import sys; print(sys.prefix)"))
    client = NotebookClient(notebook, kernel_name="python3", timeout=600,
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any error

    outputs = [output for cell in notebook.cells if cell.cell_type == "code"
               for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    assert any(WIDGET_VIEW in output.get("data", {}) for output in outputs), "the app is shown"
    text = "".join(output.get("text", "") for output in outputs if output.output_type == "stream")
    assert re.search(r"demo.parquet: \d+ sounds", text), text
    assert text.strip().splitlines()[-1] == sys.prefix, "ran in this environment's kernel"
