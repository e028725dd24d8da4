"""``python -m jaxgru demo``: the command line, its files, and that the model really learns."""

import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from references import CHILDREN

import jaxgru
from jaxgru import demo
from jaxgru.__main__ import build_parser, main
from jaxgru.demo._tasks import adding_problem, adding_task, digits_task

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FILES = ("loss_curve.png", "predictions.png")


def assert_pngs(folder: Path):
    for name in FILES:
        assert (folder / name).read_bytes()[:8] == PNG_SIGNATURE, name


def test_adding_problem_batches():
    x, y = adding_problem(jax.random.key(3), 64, 11)
    x, y = np.asarray(x), np.asarray(y)
    assert x.shape == (64, 11, 2) and y.shape == (64, 1)
    values, markers = x[..., 0], x[..., 1]
    assert np.all((values >= 0) & (values < 1))
    assert np.all(markers.sum(axis=1) == 2)
    assert np.all(markers[:, :5].sum(axis=1) == 1) and np.all(markers[:, 5:].sum(axis=1) == 1)
    np.testing.assert_allclose(y[:, 0], np.where(markers == 1, values, 0).sum(axis=1), rtol=1e-6)


def test_task_baselines():
    adding = adding_task(100, jax.random.key(0))
    assert adding.baseline == pytest.approx(1 / 6, abs=0.015)  # Var(u1 + u2), u ~ U[0, 1]
    digits = digits_task(seed=0)
    assert digits.test_x.shape[1:] == (8, 8)
    assert digits.baseline == pytest.approx(0.1, abs=0.02)  # ten balanced classes
    with pytest.raises(ValueError, match="seq_len"):
        adding_task(1, jax.random.key(0))


@CHILDREN
def test_module_entry_point_writes_plots_and_prints_metric(tmp_path):
    """``python -m jaxgru demo`` as a user runs it, in a short adding-problem run."""
    env = dict(os.environ, PYTHONPATH=str(Path(jaxgru.__file__).parents[1]))
    done = subprocess.run([sys.executable, "-m", "jaxgru", "demo", "--steps", "3", "--seq-len", "6",
                           "--convention", "reset_before", "--out", "pics"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "test MSE" in done.stdout and "baseline" in done.stdout
    assert "training on adding" in done.stderr  # the tqdm progress bar
    assert_pngs(tmp_path / "pics")


@pytest.mark.parametrize("argv, code, shown", [
    (["--help"], 0, ("--seq-len T", "--convention")),
    (["--steps", "0"], 2, ("--steps: expected an integer >= 1, got 0",)),
])
def test_demo_package_runs_as_the_demo_command(argv, code, shown, monkeypatch, capsys):
    """``python -m jaxgru.demo`` is ``python -m jaxgru demo``: its options and their checks
    (the package's ``__main__`` run as ``python -m`` runs it, in this process: the one
    command-line run in a fresh interpreter is the test above)."""
    monkeypatch.setattr(sys, "argv", ["jaxgru.demo", *argv])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module("jaxgru.demo", run_name="__main__", alter_sys=True)
    assert exit_info.value.code == code
    printed = capsys.readouterr()
    for text in shown:
        assert text in (printed.out if code == 0 else printed.err), printed


def test_defaults():
    args = build_parser().parse_args(["demo"])
    assert (args.task, args.seq_len, args.steps, args.seed, args.convention, args.out) == (
        "adding", None, None, 0, "reset_after", Path("jaxgru-demo"))


@pytest.mark.parametrize("argv", [
    [],
    ["train"],
    ["demo", "--task", "mnist"],
    ["demo", "--steps", "0"],
    ["demo", "--steps", "many"],
    ["demo", "--seq-len", "1"],
    ["demo", "--seed", "-1"],
    ["demo", "--convention", "sideways"],
    ["demo", "--task", "digits", "--seq-len", "20"],
    ["demo", "--unknown-option"],
])
def test_bad_options_exit_with_usage(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "usage: python -m jaxgru" in capsys.readouterr().err


def test_missing_extra_names_the_install_command(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # makes `import tqdm` raise ImportError
    assert main(["demo", "--steps", "1", "--out", str(tmp_path)]) == 1
    assert 'pip install -e ".[demo]"' in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_adding_problem_is_learned(tmp_path):
    """The default adding problem (T=100): far below the mean predictor's MSE in 300 steps
    (0.003 at seed 0; it crosses 0.01 near step 260)."""
    result = demo.run("adding", steps=300, out=tmp_path, progress=False)
    assert result.baseline == pytest.approx(1 / 6, abs=0.015)
    assert result.metric < 0.01
    assert result.history.eval_metrics[0] > 0.1  # the untrained model is no better than the mean


def test_digits_are_learned_from_the_command(tmp_path, capsys):
    """``demo --task digits`` through the command's `main`: it prints the test accuracy
    and the baseline and writes both PNGs; 100 steps take it far above the baseline (0.92
    at seed 0; above 0.85 from step 56)."""
    assert main(["demo", "--task", "digits", "--steps", "100", "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    found = re.search(r"test accuracy: ([0-9.]+)  \(baseline ([0-9.]+),", printed)
    assert found, printed
    metric, baseline = map(float, found.groups())
    assert metric > 0.85 > 0.2 > baseline
    assert_pngs(tmp_path / "out")
