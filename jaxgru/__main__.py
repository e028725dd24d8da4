"""Command line: ``python -m jaxgru demo [--task adding|digits] [--seq-len T] [--steps N]
[--seed S] [--convention reset_after|reset_before] [--out DIR]`` (``python -m jaxgru.demo
[options]`` is the same command).

Bad options exit with argparse's usage message and status 2; a missing package of the
``demo`` extra exits with status 1 and the command that installs it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from jaxgru import demo
from jaxgru.demo._tasks import DEFAULT_SEQ_LEN
from jaxgru.demo._train import CONVENTIONS, TASK_SETTINGS


def _int_at_least(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m jaxgru",
                                     description="jaxgru: Keras's GRU as pure JAX functions.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    adding, digits = TASK_SETTINGS["adding"], TASK_SETTINGS["digits"]
    parser_demo = commands.add_parser(
        "demo", help="train a small GRU end to end and plot it",
        description="Train a small GRU (jaxgru.rnn + a dense head, Adam, jax.jit) on a built-in task "
                    "that needs no download, print its test metric against a trivial baseline, and "
                    "write loss_curve.png and predictions.png.")
    parser_demo.add_argument("--task", choices=demo.TASKS, default="adding",
                             help="adding: the adding problem (predict the sum of two marked values); "
                                  "digits: scikit-learn's 8x8 digits read row by row (default: %(default)s)")
    parser_demo.add_argument("--seq-len", type=_int_at_least(2), default=None, metavar="T",
                             help=f"sequence length of the adding problem (default: {DEFAULT_SEQ_LEN})")
    parser_demo.add_argument("--steps", type=_int_at_least(1), default=None, metavar="N",
                             help=f"training steps (default: {adding.steps} for adding, {digits.steps} for digits)")
    parser_demo.add_argument("--seed", type=_int_at_least(0), default=0,
                             help="seed of the initialization, the data and the split (default: %(default)s)")
    parser_demo.add_argument("--convention", choices=CONVENTIONS, default="reset_after",
                             help="where the reset gate applies: after the recurrent matmul "
                                  "(Keras's default, cuDNN, PyTorch) or before it (default: %(default)s)")
    parser_demo.add_argument("--out", type=Path, default=Path("jaxgru-demo"), metavar="DIR",
                             help="folder for the PNGs (default: %(default)s)")
    parser_demo.add_argument("--no-progress", dest="progress", action="store_false",
                             help="hide the progress bar")
    parser_demo.set_defaults(command_parser=parser_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        if args.task != "adding" and args.seq_len is not None:
            args.command_parser.error("--seq-len applies to --task adding only (digits are 8 rows of 8 pixels)")
        try:
            demo.run(task=args.task, seq_len=args.seq_len, steps=args.steps, seed=args.seed,
                     convention=args.convention, out=args.out, progress=args.progress)
        except demo.MissingExtraError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
