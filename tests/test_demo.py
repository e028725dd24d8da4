"""``python -m jaxgru demo``: the command line, its files, and that the model really learns."""

import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

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


def test_demo_package_runs_as_the_demo_command():
    """``python -m jaxgru.demo`` is ``python -m jaxgru demo``: its options and their checks."""
    env = dict(os.environ, PYTHONPATH=str(Path(jaxgru.__file__).parents[1]))
    shown = subprocess.run([sys.executable, "-m", "jaxgru.demo", "--help"], env=env, capture_output=True, text=True,
                           timeout=300)
    assert shown.returncode == 0 and "--seq-len T" in shown.stdout and "--convention" in shown.stdout, shown.stderr
    refused = subprocess.run([sys.executable, "-m", "jaxgru.demo", "--steps", "0"], env=env, capture_output=True,
                             text=True, timeout=300)
    assert refused.returncode == 2 and "--steps: expected an integer >= 1, got 0" in refused.stderr, refused.stderr


def test_digits_short_run(tmp_path, capsys):
    assert main(["demo", "--task", "digits", "--steps", "3", "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "test accuracy" in printed and "baseline" in printed
    assert_pngs(tmp_path / "out")


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
    """The default adding problem (T=100): far below the mean predictor's MSE in 400 steps."""
    result = demo.run("adding", steps=400, out=tmp_path, progress=False)
    assert result.baseline == pytest.approx(1 / 6, abs=0.015)
    assert result.metric < 0.01
    assert result.history.eval_metrics[0] > 0.1  # the untrained model is no better than the mean


def test_digits_are_learned(tmp_path):
    result = demo.run("digits", steps=150, out=tmp_path, progress=False)
    assert result.metric > 0.85 > 0.2 > result.baseline
