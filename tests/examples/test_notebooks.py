"""The notebooks in ``examples/notebooks`` execute from top to bottom without an error.

Each notebook runs in a fresh Jupyter kernel (``nbclient`` + ``ipykernel``),
in a temporary working directory, the way ``jupyter nbconvert --execute``
would run it. A cell that raises fails the test with the cell's traceback;
the notebooks also ``assert`` their own results (gradients against
derivatives by hand, training that learns), so "runs" means "is right".
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "examples" / "notebooks").glob(
    "*.ipynb"))


def test_the_notebooks_are_there() -> None:
    assert {p.stem for p in NOTEBOOKS} >= {"transforms_tour", "look_inside_the_model"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")  # the kernel inherits it: tiny matrices
    monkeypatch.delenv("MPLBACKEND", raising=False)  # let the kernel use its inline backend
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    client = NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, with the traceback, if a cell fails
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code_cells and all(cell.execution_count for cell in code_cells)
    outputs = [out for cell in code_cells for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    if path.stem == "look_inside_the_model":  # its plots were drawn
        images = [out for out in outputs if "image/png" in out.get("data", {})]
        assert len(images) == 2
    if path.stem == "transforms_tour":  # the CPU backend's kernels were printed
        text = "".join(out.get("text", "") for out in outputs)
        assert "program(" in text and "kernel " in text and "define void" in text
