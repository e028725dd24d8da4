"""Flax linen modules over jaxgru's functional core: `GRUCell`, `GRU`, `Bidirectional`, `StackedGRU`.

``jaxgru.flax``, its first name, is deprecated: it warns on import and goes in the next release.

Each module's params are exactly the functional params dict of `jaxgru.GRUCell`:

    {"kernel": (D, 3U), "recurrent_kernel": (U, 3U), "bias": (3U,) | (2, 3U)}

(no ``bias`` with ``use_bias=False``), created with the cell's own (Keras) initializers,
so a module's params subtree can be passed straight to `jaxgru.rnn`, and weights from
Keras or PyTorch load into it unchanged. `Bidirectional` holds ``{"forward": params,
"backward": params}``, the layout of `jaxgru.bidirectional`.

* `GRUCell` is a `flax.linen.RNNCellBase`: one step, for `nn.RNN`, `nn.Bidirectional`
  and `nn.scan`. Under ``nn.RNN(GRUCell(U))`` its params are ``params["cell"]``.
* `GRU` is Keras's ``GRU`` layer: it runs the whole sequence with `jaxgru.rnn` (one
  input-projection matmul for all timesteps, then a `lax.scan` over the recurrent part),
  which is faster than ``nn.RNN(GRUCell)``. Its params sit directly in its scope.
* `StackedGRU` is PyTorch's multi-layer ``nn.GRU(num_layers, bidirectional, dropout)``
  over `jaxgru.stacked_rnn`; layer k's params are ``params["layers_k"]``.

Dropout uses the ``"dropout"`` rng stream and is Keras's: the masks are drawn once per
sequence and reused at every timestep. `GRU` and `Bidirectional` draw them once per call.
A `GRUCell` draws them from ``make_rng("dropout")`` at every step, so inside `nn.RNN` the
stream must be *broadcast* across the scan for the steps to share one key:

    nn.RNN(GRUCell(U, dropout=0.2, deterministic=False),
           split_rngs={"params": False, "dropout": False})

(``"dropout": True`` would give new masks at every step; `nn.RNN`'s default
``split_rngs={"params": False}`` passes no dropout rng into the scan, which then fails
with flax's ``InvalidRngError``.)

Regularizers and constraints: the cell configurations live in the module definitions,
not in the params, so `find_cells` records, once, where each jaxgru module's params sit in
``variables["params"]`` and with which `jaxgru.GRUCell`; `penalty` and `constrain` are then
pure functions of that mapping and the params.
"""

from jaxgru._frameworks.linen import GRU, Bidirectional, GRUCell, StackedGRU, constrain, find_cells, penalty

__all__ = ["Bidirectional", "GRU", "GRUCell", "StackedGRU", "constrain", "find_cells", "penalty"]
