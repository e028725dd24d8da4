"""Flax nnx modules over jaxgru's functional core: `GRUCell` and `GRU`.

Each module holds the functional params of `jaxgru.GRUCell` as `nnx.Param` attributes
named ``kernel`` ``(D, 3U)``, ``recurrent_kernel`` ``(U, 3U)`` and ``bias`` ``(3U,)`` |
``(2, 3U)`` (absent with ``use_bias=False``), created by the cell's own (Keras)
initializers, so ``nnx.state(layer, nnx.Param)`` has exactly the keys of the functional
dict and ``layer.weights()`` can be passed to `jaxgru.rnn`.

* `GRUCell` is an `nnx.RNNCellBase` (one timestep) for `nnx.RNN` and `nnx.Bidirectional`.
* `GRU` is Keras's ``GRU`` layer over `jaxgru.rnn` (the input projection for all
  timesteps in one matmul, then a `lax.scan` over the recurrent part).

Dropout, as `nnx.Dropout`: the ``deterministic`` attribute (default False, switched by
``model.eval()`` / ``model.train()`` and `nnx.view`) or the call argument disables it; the
key comes from the call's ``rngs`` if given, else from the ``dropout`` stream of the
``rngs`` the module was built with (kept only when the cell has dropout). The masks are
Keras's, drawn once per sequence: `GRU` draws one key per call; a `GRUCell` draws one
per step, so inside `nnx.RNN` broadcast the stream across the scan to reuse it at every
step (`nnx.RNN` still gives each call a new key)::

    nnx.RNN(GRUCell(D, U, dropout=0.2, rngs=rngs), broadcast_rngs="dropout")

Regularizers and constraints: `penalty(model)` sums ``cell.penalty`` over every jaxgru
module of a model; `constrain(model)` applies the constraints in place (after
``optimizer.update``).
"""

from __future__ import annotations

from typing import Any, Optional, Union

import jax
import jax.numpy as jnp
from flax import nnx
from flax.nnx.module import first_from

from jaxgru.cell import GRUCell as FunctionalGRUCell
from jaxgru.cell import Params, _check_positive_int
from jaxgru.flax import _check_layer_options, _check_sequence, _draws_dropout, _promote
from jaxgru.rnn import rnn

Dtype = Any
RngsLike = Union[nnx.Rngs, nnx.RngStream, jax.Array]


class _JaxgruModule(nnx.Module):
    """The params, the dropout stream and the ``deterministic`` switch of a jaxgru module.

    Attributes:
      cell: the `jaxgru.GRUCell` configuration (static).
      in_features, features: D and U.
      kernel, recurrent_kernel, bias: `nnx.Param`.
      deterministic: disables dropout (as `nnx.Dropout`).
      dtype: the computation dtype (inputs and weights are cast to it; None: their common
        float dtype). param_dtype: the dtype of the params.
    """

    def __init__(self, in_features: int, features: int, *, deterministic: bool, dtype: Optional[Dtype],
                 param_dtype: Dtype, rngs: nnx.Rngs, **cell_options):
        if not isinstance(rngs, nnx.Rngs):
            raise TypeError(f"rngs: expected flax.nnx.Rngs, got {type(rngs).__name__}.")
        if not isinstance(deterministic, bool):
            raise TypeError(f"deterministic: expected a bool, got {deterministic!r}.")
        self.cell = FunctionalGRUCell(features, **cell_options)
        self.in_features = _check_positive_int(in_features, "in_features")
        self.features = self.cell.units
        self.deterministic = deterministic
        self.dtype = dtype
        self.param_dtype = param_dtype
        for name, value in self.cell.init(rngs.params(), self.in_features, param_dtype).items():
            setattr(self, name, nnx.Param(value))
        # Tagged "dropout" even when ``rngs`` has no dropout stream (its key then comes from
        # the default stream), so that ``nnx.RNN(..., broadcast_rngs="dropout")`` finds it.
        self.rngs = (nnx.RngStream(rngs.dropout(), tag="dropout") if _draws_dropout(self.cell, True)
                     else nnx.data(None))

    def weights(self) -> Params:
        """The functional params dict ``{"kernel", "recurrent_kernel", "bias"}`` of arrays."""
        return {name: getattr(self, name)[...] for name in self.cell.param_shapes(self.in_features)}

    def set_view(self, deterministic: Optional[bool] = None):
        """For `nnx.view`.

        Args:
          deterministic: if True, disables dropout.
        """
        if deterministic is not None:
            self.deterministic = deterministic

    def _dropout_key(self, deterministic: Optional[bool], rngs: Optional[RngsLike]) -> Optional[jax.Array]:
        """The dropout key of this call, or None when it draws no masks."""
        training = not first_from(deterministic, self.deterministic,
                                  error_msg="deterministic: pass True/False to the constructor or the call.")
        if not _draws_dropout(self.cell, training):
            return None
        rngs = first_from(rngs, self.rngs, error_msg="rngs: dropout is on, but no rngs were given.")
        if isinstance(rngs, nnx.Rngs):
            return rngs.dropout()
        if isinstance(rngs, nnx.RngStream):
            return rngs()
        if isinstance(rngs, jax.Array):
            return rngs
        raise TypeError(f"rngs: expected nnx.Rngs, nnx.RngStream or a PRNG key, got {type(rngs).__name__}.")


class GRUCell(_JaxgruModule, nnx.RNNCellBase):
    """Keras's ``GRUCell`` as an `nnx.RNNCellBase` (one timestep).

    ``GRUCell(in_features, features, *, deterministic=False, dtype=None,
    param_dtype=float32, rngs, **cell_options)``, the options those of `jaxgru.GRUCell`.

    ``__call__(carry, inputs, *, deterministic=None, rngs=None) -> (new_carry, output)``
    with ``inputs`` ``(*batch, D)``, ``carry`` ``(*batch, U)``, ``output = new_carry``.
    Drawing dropout masks needs one batch axis. The carry keeps its dtype;
    `initialize_carry` makes zeros in ``dtype`` (``param_dtype`` when None).
    """

    def __init__(self, in_features: int, features: int, *, deterministic: bool = False,
                 dtype: Optional[Dtype] = None, param_dtype: Dtype = jnp.float32, rngs: nnx.Rngs, **cell_options):
        super().__init__(in_features, features, deterministic=deterministic, dtype=dtype, param_dtype=param_dtype,
                         rngs=rngs, **cell_options)

    def __call__(self, carry: jax.Array, inputs: jax.Array, *, deterministic: Optional[bool] = None,
                 rngs: Optional[RngsLike] = None) -> tuple[jax.Array, jax.Array]:
        key = self._dropout_key(deterministic, rngs)
        inputs, params = _promote(jnp.asarray(inputs), self.weights(), self.dtype)
        output, new_carry = self.cell.step(params, carry, inputs, key, training=key is not None)
        return new_carry, output

    def initialize_carry(self, input_shape: tuple[int, ...], rngs: Optional[RngsLike] = None) -> jax.Array:
        """Zeros ``(*batch, U)`` for inputs of shape ``(*batch, D)`` (``rngs`` is unused)."""
        del rngs
        return jnp.zeros((*input_shape[:-1], self.features), self.dtype or self.param_dtype)

    @property
    def num_feature_axes(self) -> int:
        return 1


class GRU(_JaxgruModule):
    """Keras's ``GRU`` layer over `jaxgru.rnn`.

    ``GRU(in_features, features, *, return_sequences=False, return_state=False,
    go_backwards=False, zero_output_for_mask=False, time_major=False, unroll=1,
    deterministic=False, dtype=None, param_dtype=float32, rngs, **cell_options)``.

    ``__call__(inputs, *, mask=None, initial_state=None, deterministic=None, rngs=None)``
    with ``inputs`` ``(B, T, D)`` (``(T, B, D)`` with ``time_major``), ``mask`` booleans in
    the same layout, ``initial_state`` ``(B, U)``; returns the outputs (``(B, T, U)`` with
    ``return_sequences``, else the last output ``(B, U)``), or ``(outputs, final_state)``
    with ``return_state``. With dropout on, one key per call gives the per-sequence masks.
    """

    def __init__(self, in_features: int, features: int, *, return_sequences: bool = False,
                 return_state: bool = False, go_backwards: bool = False, zero_output_for_mask: bool = False,
                 time_major: bool = False, unroll: int = 1, deterministic: bool = False,
                 dtype: Optional[Dtype] = None, param_dtype: Dtype = jnp.float32, rngs: nnx.Rngs, **cell_options):
        _check_layer_options(dict(return_sequences=return_sequences, return_state=return_state,
                                  go_backwards=go_backwards, zero_output_for_mask=zero_output_for_mask,
                                  time_major=time_major, unroll=unroll))
        super().__init__(in_features, features, deterministic=deterministic, dtype=dtype, param_dtype=param_dtype,
                         rngs=rngs, **cell_options)
        self.return_sequences = return_sequences
        self.return_state = return_state
        self.go_backwards = go_backwards
        self.zero_output_for_mask = zero_output_for_mask
        self.time_major = time_major
        self.unroll = unroll

    def __call__(self, inputs: jax.Array, *, mask: Optional[jax.Array] = None,
                 initial_state: Optional[jax.Array] = None, deterministic: Optional[bool] = None,
                 rngs: Optional[RngsLike] = None):
        inputs = _check_sequence(inputs, self.time_major)
        key = self._dropout_key(deterministic, rngs)
        inputs, params = _promote(inputs, self.weights(), self.dtype)
        outputs, final_state = rnn(
            self.cell, params, inputs, initial_state=initial_state, mask=mask, rng=key, training=key is not None,
            go_backwards=self.go_backwards, return_sequences=self.return_sequences, time_major=self.time_major,
            zero_output_for_mask=self.zero_output_for_mask, unroll=self.unroll)
        return (outputs, final_state) if self.return_state else outputs


def _jaxgru_modules(model: nnx.Module):
    if not isinstance(model, nnx.Module):
        raise TypeError(f"model: expected a flax.nnx.Module, got {type(model).__name__}.")
    return [module for _, module in nnx.iter_modules(model) if isinstance(module, _JaxgruModule)]


def penalty(model: nnx.Module) -> jax.Array:
    """Sum of ``cell.penalty`` over every jaxgru module in ``model`` (Keras's ``model.losses``).

    A scalar to add to the loss (0 without regularizers); differentiable in the params, so
    call it inside the loss function given to `nnx.grad` / `nnx.value_and_grad`.
    """
    return sum((module.cell.penalty(module.weights()) for module in _jaxgru_modules(model)), jnp.zeros(()))


def constrain(model: nnx.Module) -> None:
    """Applies every jaxgru module's constraints to its params, in place.

    Keras applies constraints after each optimizer step: call it right after
    ``optimizer.update(model, grads)`` (inside the same `nnx.jit` step is fine).
    """
    for module in _jaxgru_modules(model):
        for name, value in module.cell.constrain(module.weights()).items():
            getattr(module, name)[...] = value
