"""The notebooks run end to end in a real Jupyter kernel against a fresh backtest."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from arbsim.analysis import bundled_session

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NAMES = ["fills_and_slippage", "latency", "backtest_vs_paper"]


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("nb") / "run"
    subprocess.run(
        [sys.executable, "-m", "arbsim.app.cli", "backtest", "--out", str(out)],
        check=True,
        capture_output=True,
    )
    return out


def _execute(path: Path, cwd: Path) -> nbformat.NotebookNode:
    nb: nbformat.NotebookNode = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    client.execute()
    return nb


def _problems(nb: nbformat.NotebookNode) -> list[str]:
    out = []
    for i, cell in enumerate(nb.cells):
        for o in cell.get("outputs", []):
            if o["output_type"] == "error":
                out.append(f"cell {i}: {o['ename']}: {o['evalue']}")
            # a warning in a notebook is a notebook a new user will be puzzled by
            elif o["output_type"] == "stream" and o["name"] == "stderr":
                out.append(f"cell {i} stderr: {o['text'][:300]}")
    return out


@pytest.mark.parametrize("name", NAMES)
def test_committed_without_outputs(name: str) -> None:
    nb: nbformat.NotebookNode = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, name
    assert all(not c.outputs and c.execution_count is None for c in code)
    # the first code cell sets the run directory
    assert "ARBSIM_RUN" in code[0].source
    # the analysis goes through arbsim.analysis (and arbsim.analysis.compare), nothing deeper
    imports = {
        line.split()[1]
        for c in code
        for line in c.source.splitlines()
        if line.startswith(("import arbsim", "from arbsim"))
    }
    assert imports <= {"arbsim", "arbsim.analysis"}, imports
    assert all(
        line.strip()
        in ("from arbsim import analysis as an", "from arbsim.analysis import compare as cmp")
        for c in code
        for line in c.source.splitlines()
        if line.startswith(("import arbsim", "from arbsim"))
    )


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs(
    name: str, sample_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the kernel inherits this environment: the first cell uses the fresh run; the
    # backtest-vs-paper notebook its default, the paper session kept with arbsim
    if name == "backtest_vs_paper":
        monkeypatch.delenv("ARBSIM_RUN", raising=False)
        run = bundled_session()
    else:
        monkeypatch.setenv("ARBSIM_RUN", str(sample_run))
        run = sample_run
    monkeypatch.delenv("ARBSIM_RUN_B", raising=False)
    nb = _execute(NOTEBOOKS / f"{name}.ipynb", tmp_path)
    assert _problems(nb) == []
    images = sum(
        1
        for c in nb.cells
        for o in c.get("outputs", [])
        if o["output_type"] == "display_data" and "image/png" in o.get("data", {})
    )
    assert images >= 2, f"{name}: {images} plots"
    assert str(run) in "".join(o.get("text", "") for o in nb.cells[1].outputs)


def test_backtest_vs_paper_refuses_a_run_without_recording(
    sample_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARBSIM_RUN", str(sample_run))  # a backtest: it records nothing
    nb: nbformat.NotebookNode = nbformat.read(NOTEBOOKS / "backtest_vs_paper.ipynb", 4)
    first = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    nb.cells = nb.cells[: first + 1]
    with pytest.raises(CellExecutionError, match="has no catalog/: point ARBSIM_RUN at a paper"):
        NotebookClient(nb, timeout=120, kernel_name="python3").execute()


def test_default_run_is_a_fresh_backtest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without ARBSIM_RUN, the first cell writes a backtest of the bundled sample."""
    monkeypatch.delenv("ARBSIM_RUN", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    nb: nbformat.NotebookNode = nbformat.read(NOTEBOOKS / "latency.ipynb", as_version=4)
    first = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    nb.cells = nb.cells[: first + 1]
    client = NotebookClient(nb, timeout=120, kernel_name="python3")
    client.execute()
    assert _problems(nb) == []
    text = "".join(o.get("text", "") for o in nb.cells[first].outputs)
    assert "SYNTHETIC sample data" in text
    runs = list(tmp_path.glob("arbsim-*/sample/summary.json"))
    assert len(runs) == 1


def test_the_sweep_notebook_runs_on_a_two_worker_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = NOTEBOOKS / "parameter_sweep.ipynb"
    committed: nbformat.NotebookNode = nbformat.read(path, as_version=4)
    assert all(not c.outputs for c in committed.cells if c.cell_type == "code")
    monkeypatch.setenv("ARBSIM_SWEEP", str(tmp_path / "out"))
    try:
        nb = _execute(path, tmp_path)
    except CellExecutionError as e:
        pytest.fail(f"parameter_sweep: {e}")
    assert _problems(nb) == []
    import pandas as pd

    results = pd.read_parquet(tmp_path / "out" / "sweep" / "results.parquet")
    assert len(results) == 12 and (results.status == "ok").all()
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images, "the heatmap was not drawn"
