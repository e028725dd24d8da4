"""Flax nnx modules over jaxgru's functional core: `GRUCell`, `GRU`, `Bidirectional` and `StackedGRU`.

Each module holds the functional params of `jaxgru.GRUCell` as `nnx.Param` attributes
named ``kernel`` ``(D, 3U)``, ``recurrent_kernel`` ``(U, 3U)`` and ``bias`` ``(3U,)`` |
``(2, 3U)`` (absent with ``use_bias=False``), created by the cell's own (Keras)
initializers, so ``nnx.state(layer, nnx.Param)`` has exactly the keys of the functional
dict and ``layer.weights()`` can be passed to `jaxgru.rnn`.

* `GRUCell` is an `nnx.RNNCellBase` (one timestep) for `nnx.RNN` and `nnx.Bidirectional`.
* `GRU` is Keras's ``GRU`` layer over `jaxgru.rnn` (the input projection for all
  timesteps in one matmul, then a `lax.scan` over the recurrent part).
* `Bidirectional` is Keras's ``Bidirectional(GRU)`` over `jaxgru.bidirectional`: a
  forward and a backward `GRU`, so ``nnx.state(layer, nnx.Param)`` is ``{"forward":
  params, "backward": params}``, the layout `jaxgru.bidirectional` takes.
* `StackedGRU` is PyTorch's multi-layer ``nn.GRU(num_layers, bidirectional, dropout)``
  over `jaxgru.stacked_rnn`, one `GRU` (or `Bidirectional`) per layer.

Dropout, as `nnx.Dropout`: the ``deterministic`` attribute (default False, switched by
``model.eval()`` / ``model.train()`` and `nnx.view`) or the call argument disables it; the
key comes from the call's ``rngs`` if given, else from the ``dropout`` stream of the
``rngs`` the module was built with (kept only when the cell has dropout). The masks are
Keras's, drawn once per sequence: `GRU` draws one key per call (`Bidirectional` one per
call, split between the directions); a `GRUCell` draws one per step, so inside `nnx.RNN`
broadcast the stream across the scan to reuse it at every step (`nnx.RNN` still gives
each call a new key):

    nnx.RNN(GRUCell(D, U, dropout=0.2, rngs=rngs), broadcast_rngs="dropout")

Regularizers and constraints: `penalty(model)` sums ``cell.penalty`` over every jaxgru
module of a model; `constrain(model)` applies the constraints in place (after
``optimizer.update``).
"""

from jaxgru._frameworks.nnx import GRU, Bidirectional, GRUCell, StackedGRU, constrain, penalty

__all__ = ["Bidirectional", "GRU", "GRUCell", "StackedGRU", "constrain", "penalty"]
