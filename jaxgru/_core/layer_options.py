"""The options that shape a layer or a stack of layers, checked once for every module
that builds one (`jaxgru.rnn`, `jaxgru.stacked`, the Flax, Equinox and ONNX modules): the
merge modes of a bidirectional layer, its ``{"forward", "backward"}`` params, and a
stack's between-layer dropout. Each error names the argument and what was expected."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import jax.numpy as jnp

from jaxgru._core.validation import check_bool

if TYPE_CHECKING:
    from jaxgru._core.cell import GRUCell

__all__ = ["MERGE_MODES", "check_bidirectional_params", "check_dropout", "check_stack_options"]

MERGE_MODES = ("concat", "sum", "ave", "mul", None)


def check_bidirectional_params(cells: tuple[GRUCell, GRUCell], params: Any, label: str = "params") -> int:
    """Validates ``{"forward": params, "backward": params}`` against the ``(forward,
    backward)`` cells; returns the ``D`` both kernels take. Errors start with ``label``."""
    if not isinstance(params, Mapping) or set(params) != {"forward", "backward"}:
        got = f"keys {sorted(params)}" if isinstance(params, Mapping) else type(params).__name__
        raise ValueError(f"{label}: expected {{'forward': params, 'backward': params}}, got {got}.")
    dims = []
    for direction, direction_cell in zip(("forward", "backward"), cells, strict=True):
        try:
            dims.append(direction_cell.check_params(params[direction]))
        except (TypeError, ValueError) as error:
            raise type(error)(f"{label}[{direction!r}]: {error}") from None
    if dims[0] != dims[1]:
        raise ValueError(f"{label}: the forward kernel takes D={dims[0]} features and the backward kernel "
                         f"D={dims[1]}; they must match.")
    return dims[0]


def check_dropout(rate: Any, argument: str = "dropout") -> float:
    """PyTorch's rule for ``nn.GRU(dropout=p)``: a real number (not a bool) in ``[0, 1]``.

    ``p = 1`` zeroes every element between the layers, as in PyTorch.
    """
    if isinstance(rate, (bool, jnp.bool_)) or not isinstance(rate, numbers.Real):
        raise TypeError(f"{argument}: expected a number in [0, 1] (the probability of zeroing an element "
                        f"between layers), got {rate!r}.")
    # also refuses NaN (numbers.Real's stubs declare no comparison with int)
    if not 0 <= rate <= 1:  # type: ignore[operator]
        raise ValueError(f"{argument}: expected a number in [0, 1] (the probability of zeroing an element "
                         f"between layers), got {rate!r}.")
    return float(rate)


def check_stack_options(*, bidirectional: Any, dropout: Any, merge_mode: Any) -> float:
    """Validates the options that shape a stack (a bool ``bidirectional``, `check_dropout`,
    a ``merge_mode`` whose output can feed a next layer); returns the dropout rate."""
    check_bool(bidirectional, "bidirectional")
    if merge_mode not in MERGE_MODES:
        raise ValueError(f"merge_mode: expected one of {MERGE_MODES}, got {merge_mode!r}.")
    if bidirectional and merge_mode is None:
        raise ValueError("merge_mode: None returns a (forward, backward) pair, which no next layer takes; "
                         "use 'concat' (PyTorch's), 'sum', 'ave' or 'mul'.")
    return check_dropout(dropout)

