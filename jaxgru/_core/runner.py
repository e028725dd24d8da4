"""Which loop runs a sequence: the one place that chooses (`run`).

The loops themselves are `jaxgru._core.loop.forward` (the scan over steps) and
`jaxgru._core.loop.over_chunks` (the loop over chunks of steps, each projected right before
its part of the scan), each differentiated by autodiff or by its hand-written adjoint
(`jaxgru._core.adjoints.recurrence` and `stepwise`). The CPU rules below were measured:
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
from jax import lax

from jaxgru._core import adjoints
from jaxgru._core.cell import GRUCell
from jaxgru._core.gates import GateInputs
from jaxgru._core.loop import Carry, LoopOptions, Steps, forward, over_chunks
from jaxgru.types import Params

__all__ = ["CPU_CHUNK_ELEMENTS", "CPU_STEPWISE_ELEMENTS", "default_stepwise", "default_time_chunk", "run"]

# Elements of one (C, B, U) chunk array in the default CPU time chunk: 1 MiB in float32.
CPU_CHUNK_ELEMENTS = 2 ** 18
# B*U from which the default CPU loop projects every step itself (time_chunk=1).
CPU_STEPWISE_ELEMENTS = 2 ** 16


def default_time_chunk(steps: Any, batch: Any, units: int, platform: str = "cpu") -> Any:
    """The ``time_chunk`` `run` uses on ``platform`` when given None: ``T`` (one
    projection) on GPU/TPU; on CPU the largest ``C >= 1`` with ``C*B*U <=
    CPU_CHUNK_ELEMENTS``, or ``T`` where that leaves fewer than two chunks (measured: a
    short sequence gains nothing). ``T`` also where a size is symbolic (`jax.export`)."""
    if platform != "cpu" or not all(isinstance(n, int) for n in (steps, batch, units)):
        return steps
    chunk = max(1, CPU_CHUNK_ELEMENTS // max(1, batch * units))
    return steps if 2 * chunk > steps else chunk


def default_stepwise(steps: Any, batch: Any, units: int, platform: str = "cpu") -> bool:
    """Whether `run`, given ``time_chunk=None`` and differentiated by the fused adjoint on
    ``platform``, runs one loop whose every step projects its own inputs and whose
    reverse loop accumulates the weight gradients step by step: on CPU where ``B*U >=
    CPU_STEPWISE_ELEMENTS``, where one step's matmuls are large enough and a chunk of a
    few steps' arrays no longer fits in cache."""
    sizes = (steps, batch, units)
    return (platform == "cpu" and all(isinstance(n, int) for n in sizes) and steps > 1
            and batch * units >= CPU_STEPWISE_ELEMENTS)


def run(cell: GRUCell, params: Params, carry: Carry, steps: Steps, options: LoopOptions) -> tuple[jax.Array, Carry]:
    """``(outputs (T, B, U), final Carry)`` of the loop the rule chooses for ``steps``
    (inputs ``(T, B, D)``):

    1. Gradient: the hand-written adjoint where ``options.gradient == "fused"``, there is
       no ``remat`` and the activations are elementwise (`jaxgru._core.adjoints.supports`);
       else autodiff of the same loop.
    2. Time chunk: ``options.time_chunk`` if given (``1`` also means stepwise: every step
       projects its own inputs inside one loop, and the fused adjoint sums the weight
       gradients step by step). None: ``T`` (one projection of all steps) on GPU/TPU and
       wherever `default_time_chunk` is ``T``; on CPU `default_time_chunk`'s cache-sized
       chunks, and with the fused adjoint from ``B*U >= CPU_STEPWISE_ELEMENTS``
       (`default_stepwise`) stepwise when differentiated (its forward pass alone keeps the
       chunks, measured faster). The platform is chosen when the program is lowered
       (`lax.platform_dependent`), so a `jax.export` for ``("cpu", "cuda")`` chunks on CPU
       only.
    3. Loop: stepwise with the fused adjoint: `jaxgru._core.adjoints.stepwise`; else
       `jaxgru._core.loop.over_chunks` of `jaxgru._core.adjoints.recurrence` (fused) or
       `jaxgru._core.loop.forward` (autodiff), in-loop projection for a stepwise chunk of 1.

    Every choice changes speed and memory locality only: the results are the same, up
    to float rounding in the weight gradients (sums over chunks or steps instead of one).
    """
    fused = options.gradient == "fused" and not options.remat and adjoints.supports(cell)

    def loop(chosen: LoopOptions) -> Callable[[], tuple[jax.Array, Carry]]:
        if chosen.stepwise and fused:
            return functools.partial(adjoints.stepwise, forward, cell, params, carry, steps, chosen)
        recurrence = adjoints.recurrence if fused else forward
        return functools.partial(over_chunks, recurrence, cell, params, carry, steps, chosen)

    if options.time_chunk is not None:
        return loop(options)()
    assert not isinstance(steps.inputs, GateInputs)  # (T, B, D), projected by the loops
    length, batch = steps.inputs.shape[:2]
    cpu_chunk = default_time_chunk(length, batch, cell.units, "cpu")
    cpu_stepwise = fused and default_stepwise(length, batch, cell.units, "cpu")
    whole = options._replace(time_chunk=length)
    if cpu_chunk == length and not cpu_stepwise:
        return loop(whole)()
    cpu = options._replace(time_chunk=cpu_chunk, stepwise=cpu_stepwise)
    return lax.platform_dependent(cpu=loop(cpu), default=loop(whole))
