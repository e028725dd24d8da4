"""Every notebook in ``notebooks/`` runs top to bottom, and is stored with its outputs.

The notebooks run in a fresh ``python3`` kernel (ipykernel's kernel for this interpreter),
in the ``notebooks/`` folder, with the repository root on ``PYTHONPATH`` so that they
import this checkout of jaxgru whether or not it is installed.

The kernel inherits the suite's ``JAX_DISABLE_MOST_OPTIMIZATIONS=1`` (conftest.py): the
notebooks run their small programs op by op, so most of their time is compilation (about a
quarter less CPU time this way, on the three); what the test checks is that every cell
runs, and the values the cells print are the stored outputs of a run at JAX's default.
"""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from references import CHILDREN

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT_S = 300
# Lines the test runs shorter than stored (the stored outputs keep the full run): every
# cell still runs, over fewer epochs. Each line must be in the notebook, once.
SHORTER_RUN = {"02_flax_training": [("BATCH, EPOCHS = 64, 10", "BATCH, EPOCHS = 64, 1")]}


def code_cells(notebook):
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def test_the_notebooks_exist():
    names = {path.name for path in NOTEBOOKS}
    assert {"01_quickstart.ipynb", "02_flax_training.ipynb", "03_port_keras_pytorch.ipynb"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_stored_with_outputs_in_order(path):
    """Saved after a clean top-to-bottom run: cells numbered 1..n, outputs present, no errors."""
    cells = code_cells(nbformat.read(path, as_version=4))
    assert [cell.execution_count for cell in cells] == list(range(1, len(cells) + 1))
    assert all(cell.outputs for cell in cells), "every code cell shows a result"
    assert not [out for cell in cells for out in cell.outputs if out.output_type == "error"]


@CHILDREN  # a kernel: 0.6-1.2 GB (03 loads TensorFlow and torch)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_executes_top_to_bottom(path):
    """Every cell, in order, in a fresh kernel (10 epochs of training in 02 run as 1)."""
    notebook = nbformat.read(path, as_version=4)
    for stored, run in SHORTER_RUN.get(path.stem, []):
        cells = [cell for cell in code_cells(notebook) if stored in cell.source]
        assert len(cells) == 1 and cells[0].source.count(stored) == 1, f"{path.name}: no single line {stored!r}"
        cells[0].source = cells[0].source.replace(stored, run)
    python_path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, PYTHONPATH=python_path)
    client = NotebookClient(notebook, kernel_name="python3", timeout=CELL_TIMEOUT_S,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute(env=env)  # raises CellExecutionError, with the cell and traceback, on any error
    assert all(cell.execution_count is not None for cell in code_cells(notebook))
