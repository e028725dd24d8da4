"""Equinox modules over jaxgru's functional core: `GRUCell`, `GRU` and `Bidirectional`.

Each module is an `eqx.Module` whose array fields are exactly the functional params of
`jaxgru.GRUCell`: ``kernel`` ``(D, 3U)``, ``recurrent_kernel`` ``(U, 3U)`` and ``bias``
``(3U,)`` | ``(2, 3U)`` (None with ``use_bias=False``), created by the cell's own (Keras)
initializers; the configuration is the static field ``cell`` (a hashable
`jaxgru.GRUCell`). ``module.weights()`` (or ``module.params``) is the dict `jaxgru.rnn`
takes, and ``Module.from_params(cell, params)`` wraps existing params. The gate math
(Keras's [z, r, h] gate order, ``reset_after``) and the cell options are
`jaxgru.GRUCell`'s.

* `GRUCell`: one timestep, ``cell(x, state) -> new_state`` as `eqx.nn.GRUCell`.
* `GRU`: Keras's ``GRU`` layer over `jaxgru.rnn`; returns ``(outputs, final_state)``.
* `Bidirectional`: Keras's ``Bidirectional(GRU)`` over `jaxgru.bidirectional`; a
  ``forward`` and a ``backward`` `GRU`; returns ``(outputs, (final_fw, final_bw))``.

Shapes: inputs ``(T, D)`` for one sequence, as Equinox modules are usually written and
then `jax.vmap`-ed over the batch, or ``(B, T, D)`` (any number of leading batch axes;
``(T, B, D)`` with ``time_major``); states ``(U,)`` or ``(B, U)``; outputs ``(T, U)`` /
``(B, T, U)``, or the last output ``(U,)`` / ``(B, U)`` without ``return_sequences``.

Equinox conventions:

* Constructors take ``key=`` (a PRNG key) and ``dtype=`` (the params' dtype; None:
  float32, or float64 with ``jax_enable_x64``) and the keyword options of
  `jaxgru.GRUCell` (``activation=``, ``reset_after=``, ``dropout=``, ...), or a ready
  ``cell=``. The layer flags (``return_sequences``, ...) are static fields.
* Dropout, as `eqx.nn.Dropout`: the ``inference`` field (a Python bool, default False;
  switched by `eqx.nn.inference_mode`; static under `eqx.filter_jit`) or the call's
  ``inference`` argument (None: the field) disables it. It is active when not in
  inference and ``dropout`` or ``recurrent_dropout`` is in (0, 1); the call then needs
  ``key=`` (a clear error otherwise) and draws Keras's masks once per sequence from it:
  the same key gives the same output. Otherwise ``key`` is ignored.
* Under ``jax.vmap`` over single sequences, give each example its own key
  (``jax.vmap(lambda x, k: gru(x, key=k))(xs, jax.random.split(key, B))``): each draws
  its own masks, which have the same distribution as, but other values than, those of a
  batched call with one key. A key shared across the batch gives every example the
  same masks.

Regularizers and constraints: `penalty(model)` sums ``cell.penalty`` over every jaxgru
module in a pytree (add it to the loss); `constrain(model)` returns the model with every
module's constraints applied (call it after ``eqx.apply_updates``).
"""

from jaxgru._frameworks.equinox import GRU, Bidirectional, GRUCell, constrain, penalty

__all__ = ["GRU", "Bidirectional", "GRUCell", "constrain", "penalty"]
