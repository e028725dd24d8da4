"""Keras 3's ``keras.layers.GRU`` on jaxgru's loop, behind `jaxgru.keras` (whose docstring
states what it keeps of Keras and what it changes): `GRU`, registered with Keras as
``"jaxgru>GRU"`` under its public module ``jaxgru.keras``, and `convert`."""

from __future__ import annotations

from typing import Any

try:
    import keras
except ImportError as error:  # pragma: no cover - exercised only without Keras installed
    raise ImportError("jaxgru.keras needs Keras 3: pip install 'jaxgru[keras]' (keras>=3).") from error

import jaxgru

if int(keras.__version__.split(".")[0]) < 3:  # pragma: no cover - Keras 2 has no keras.src
    raise ImportError(f"jaxgru.keras needs Keras 3 (keras>=3), found keras {keras.__version__}.")

__all__ = ["GRU", "convert"]


def _jaxgru_cell(cell: Any) -> jaxgru.GRUCell:
    """The `jaxgru.GRUCell` computing what Keras 3's ``GRUCell`` ``cell`` computes.

    The activations are the cell's own Keras functions (Keras 3's definitions); Keras 3
    runs every ``implementation`` other than 1 as 2.
    """
    return jaxgru.GRUCell(cell.units, activation=cell.activation, recurrent_activation=cell.recurrent_activation,
                          use_bias=bool(cell.use_bias), dropout=float(cell.dropout),
                          recurrent_dropout=float(cell.recurrent_dropout),
                          implementation=1 if cell.implementation == 1 else 2, reset_after=bool(cell.reset_after))


def _is_active(rate: float) -> bool:
    return 0.0 < rate < 1.0


def _per_gate(mask: Any) -> Any:
    """Keras's cached mask(s) as jaxgru's ``(3, B, ·)``: implementation 1 caches a list of
    three, implementation 2 one mask for the fused projection (jaxgru's gate 0)."""
    import jax.numpy as jnp

    if isinstance(mask, (list, tuple)):
        return jnp.stack([jnp.asarray(m) for m in mask])
    mask = jnp.asarray(mask)
    return jnp.broadcast_to(mask, (3, *mask.shape))


def _dropout_masks(cell: Any, sequences: Any, state: Any, training: bool) -> jaxgru.DropoutMasks | None:
    """The masks ``keras.layers.GRU.call`` drew for this call (the cell's cache), or None
    when the call uses none (inference, or no rate in (0, 1))."""
    if not training:
        return None
    inputs = recurrent = None
    if _is_active(cell.dropout):
        inputs = _per_gate(cell.get_dropout_mask(sequences[:, 0, :]))
    if _is_active(cell.recurrent_dropout):
        recurrent = _per_gate(cell.get_recurrent_dropout_mask(state))
    if inputs is None and recurrent is None:
        return None
    return jaxgru.DropoutMasks(inputs, recurrent)


def _as_step_mask(mask: Any) -> Any:
    """Keras's mask ``(B, T)`` (or ``(B, T, k)``: a step is masked where all ``k`` are) as
    booleans."""
    import jax.numpy as jnp

    mask = jnp.asarray(mask).astype(bool)
    if mask.ndim > 2:
        mask = jnp.any(mask.reshape(*mask.shape[:2], -1), axis=-1)
    return mask


def _keras_refuses_cudnn(layer: Any, mask: Any) -> bool:
    """Whether Keras 3's JAX backend refuses ``use_cudnn=True`` for this call (its fused
    path covers reset_after=True without recurrent dropout, a mask or unroll)."""
    return (layer.use_cudnn is True
            and bool(layer.recurrent_dropout or not layer.reset_after or layer.unroll or mask is not None))


@keras.saving.register_keras_serializable(package="jaxgru", name="GRU")
class GRU(keras.layers.GRU):
    """``keras.layers.GRU`` with jaxgru's sequence loop on the JAX backend.

    Takes exactly ``keras.layers.GRU``'s arguments (units, activation,
    recurrent_activation, use_bias, initializers, regularizers, constraints, dropout,
    recurrent_dropout, seed, return_sequences, return_state, go_backwards, stateful,
    unroll, reset_after, use_cudnn, and the legacy ``implementation``) with its defaults,
    and has its variables, config, output shapes and errors. Call it as Keras's:
    ``layer(sequences (B, T, D), initial_state=(B, U), mask=(B, T), training=...)``
    returns the outputs ``(B, T, U)`` (``return_sequences``) or ``(B, U)``, followed by
    the final state ``(B, U)`` with ``return_state``.

    On the JAX backend the loop is `jaxgru.rnn` with the layer's weights, its cached
    dropout masks and Keras 3's mask rules (see `jaxgru.keras`); on other backends
    Keras's own.
    """

    # Its public home: a saved config records ``"module": "jaxgru.keras"`` (as before the
    # class moved here), a path that stays importable wherever the implementation lives.
    __module__ = "jaxgru.keras"

    def inner_loop(self, sequences, initial_state, mask, training=False):
        """``(last_output (B, U), outputs, [final_state (B, U)])`` of the loop over
        ``sequences (B, T, D)`` from ``initial_state (B, U)``: `jaxgru.rnn` on the JAX
        backend, Keras's loop elsewhere. ``outputs`` is ``(B, T, U)`` in processing order
        with ``return_sequences``, else ``(B, 1, U)``."""
        if keras.backend.backend() != "jax" or _keras_refuses_cudnn(self, mask):
            return super().inner_loop(sequences, initial_state, mask, training=training)
        import jax.numpy as jnp

        if isinstance(initial_state, (list, tuple)):
            initial_state = initial_state[0]
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        cell = self.cell
        h0 = jnp.asarray(initial_state)
        params = {"kernel": cell.kernel.value, "recurrent_kernel": cell.recurrent_kernel.value}
        if cell.use_bias:
            params["bias"] = cell.bias.value
        masks = _dropout_masks(cell, sequences, h0, bool(training))
        step_mask = None if mask is None else _as_step_mask(mask)
        # Keras 3's unrolled loop ignores zero_output_for_mask (masked steps repeat the
        # previous output, zeros before the first valid step).
        zero_output = bool(self.zero_output_for_mask) and not self.unroll
        outputs, final_state = jaxgru.rnn(
            _jaxgru_cell(cell), params, jnp.asarray(sequences), initial_state=h0, mask=step_mask,
            training=masks is not None, dropout_masks=masks, go_backwards=bool(self.go_backwards),
            return_sequences=bool(self.return_sequences), zero_output_for_mask=zero_output,
            unroll=True if self.unroll else 1)
        if self.return_sequences:
            if step_mask is not None and not self.unroll and not zero_output:
                outputs = _repeat_initial_state(outputs, step_mask, h0, bool(self.go_backwards))
            return outputs[:, -1], outputs, [final_state]
        if step_mask is not None and not self.unroll and not zero_output:
            outputs = final_state  # Keras 3's scan outputs the carried state at a masked last step
        return outputs, outputs[:, None, :], [final_state]


def _repeat_initial_state(outputs: Any, mask: Any, h0: Any, go_backwards: bool) -> Any:
    """Keras 3's scan outputs the carried state at a masked step: before a row's first
    valid step (in processing order) that is the initial state ``h0 (B, U)``, where jaxgru
    (as tf_keras) outputs zeros. ``outputs (B, T, U)`` in processing order, ``mask (B, T)``
    in input order."""
    import jax.numpy as jnp

    order = mask[:, ::-1] if go_backwards else mask
    seen = jnp.cumsum(order.astype(jnp.int32), axis=1) > 0
    return jnp.where(seen[:, :, None], outputs, h0[:, None, :].astype(outputs.dtype))


def _swapped(layer: Any) -> Any:
    """A fresh `GRU` with ``layer``'s (a ``keras.layers.GRU``) config and ``use_cudnn``."""
    swapped = GRU.from_config(layer.get_config())
    swapped.use_cudnn = layer.use_cudnn
    return swapped


def _is_keras_gru(layer: Any) -> bool:
    return type(layer) is keras.layers.GRU


def _clone_with_jaxgru(layer: Any) -> Any:
    """`convert`'s clone function: Keras GRUs (also inside ``Bidirectional``) become `GRU`,
    every other layer is cloned from its config (Keras's default)."""
    if _is_keras_gru(layer):
        return _swapped(layer)
    if isinstance(layer, keras.layers.Bidirectional) and (
            _is_keras_gru(layer.forward_layer) or _is_keras_gru(layer.backward_layer)):
        config = layer.get_config()
        for key, inner in (("layer", layer.forward_layer), ("backward_layer", layer.backward_layer)):
            if _is_keras_gru(inner):
                config[key] = keras.saving.serialize_keras_object(_swapped(inner))
        return layer.__class__.from_config(config)
    return layer.__class__.from_config(layer.get_config())


def convert(model: keras.Model) -> keras.Model:
    """A copy of ``model`` in which every ``keras.layers.GRU`` is jaxgru's `GRU`.

    Also the GRUs inside ``keras.layers.Bidirectional`` and inside nested Sequential or
    functional models. Built through ``keras.models.clone_model`` (so ``model`` must be
    Sequential or functional: Keras refuses subclassed models with a ValueError); every
    other layer is cloned from its config, as ``clone_model`` does by default. When
    ``model`` is built, the copy gets its weights (``get_weights``/``set_weights``: the
    variables are the same, in the same order), so it predicts what ``model`` predicts.
    The copy is not compiled; ``model`` is left unchanged.

    Raises:
      TypeError: ``model`` is not a ``keras.Model``.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"model: expected a keras.Model (Sequential or functional), got {type(model).__name__}.")
    copy = keras.models.clone_model(model, clone_function=_clone_with_jaxgru, recursive=True)
    if model.built:
        copy.set_weights(model.get_weights())
    return copy
