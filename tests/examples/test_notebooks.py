"""The notebooks in ``examples/notebooks`` execute from top to bottom without an error.

Every ``*.ipynb`` there is found by glob, so a new notebook is tested as soon as
it exists. Each runs in a fresh Jupyter kernel (``nbclient`` + ``ipykernel``),
in a temporary working directory, the way ``jupyter nbconvert --execute``
would run it, with ``FGRAD_NOTEBOOK_QUICK=1`` in its environment: the
notebooks then train for fewer epochs (same lessons, smaller numbers). A cell
that raises fails the test with the cell's traceback; the notebooks
``assert`` what their text claims (gradients by hand against ``grad``,
``vmap`` against a loop, training that learns), so "runs" means "is right".

A notebook has ``NOTEBOOK_TIMEOUT_S`` seconds in all, not per cell: each
cell's timeout is what is left of that budget.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "examples" / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
NOTEBOOK_TIMEOUT_S = 180  # each takes 5-45 s in quick mode on a loaded 2-core machine

# The four lessons of issue 5, item 6.
LESSONS = {"01_autodiff_from_the_foundations", "02_training_mnist1d",
           "03_vmap_and_per_example_gradients", "04_write_your_own_primitive"}


class DeadlineClient(NotebookClient):
    """A ``NotebookClient`` whose cells share one time budget for the whole notebook."""

    def __init__(self, nb: nbformat.NotebookNode, budget_s: float, **kwargs: Any) -> None:
        super().__init__(nb, **kwargs)
        self.deadline = time.monotonic() + budget_s

    async def async_execute_cell(self, cell: nbformat.NotebookNode, cell_index: int,
                                 execution_count: int | None = None,
                                 store_history: bool = True) -> nbformat.NotebookNode:
        self.timeout = max(1, math.ceil(self.deadline - time.monotonic()))
        return await super().async_execute_cell(cell, cell_index, execution_count,
                                                store_history)


def test_the_lessons_are_there() -> None:
    assert {p.stem for p in NOTEBOOKS} >= LESSONS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_clean(path: Path) -> None:
    """Committed without outputs (they are produced here), valid, with a Python kernel."""
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata.get("kernelspec", {}).get("language") == "python"
    assert notebook.cells and notebook.cells[0].cell_type == "markdown"  # a title first
    dirty = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"
             and (cell.outputs or cell.execution_count is not None)]
    assert not dirty, f"{path.name}: clear the outputs of cells {dirty} before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")  # the kernel inherits it: tiny matrices
    monkeypatch.setenv("FGRAD_NOTEBOOK_QUICK", "1")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # let the kernel use its inline backend
    notebook = nbformat.read(path, as_version=4)
    client = DeadlineClient(notebook, NOTEBOOK_TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    try:
        client.execute()  # raises CellExecutionError, with the traceback, if a cell fails
    except CellTimeoutError as error:
        pytest.fail(f"{path.name} ran past its budget of {NOTEBOOK_TIMEOUT_S} s: {error}")
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code_cells and all(cell.execution_count for cell in code_cells)
    outputs = [out for cell in code_cells for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    if path.stem in LESSONS:  # each lesson plots what it measures
        images = [out for out in outputs if "image/png" in out.get("data", {})]
        assert images, f"{path.name} drew no plot"
