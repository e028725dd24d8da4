"""jaxgru: Keras's GRUCell and GRU layer as pure JAX functions."""

from jaxgru.cell import GRUCell
from jaxgru.dropout import DropoutMasks
from jaxgru.interop import (
    from_cudnn,
    from_equinox,
    from_flax_linen,
    from_flax_nnx,
    from_haiku,
    from_keras,
    from_onnx,
    from_torch,
    from_torch_stack,
    layer_from_config,
    load_keras_weights,
    to_cudnn,
    to_equinox,
    to_flax_linen,
    to_haiku,
    to_keras,
    to_onnx,
    to_torch,
    to_torch_stack,
)
from jaxgru.rnn import bidirectional, rnn
from jaxgru.stacked import stacked_rnn

__all__ = ["DropoutMasks", "GRUCell", "bidirectional", "from_cudnn", "from_equinox", "from_flax_linen", "from_flax_nnx",
           "from_haiku", "from_keras", "from_onnx", "from_torch", "from_torch_stack", "layer_from_config",
           "load_keras_weights", "rnn", "stacked_rnn", "to_cudnn", "to_equinox", "to_flax_linen", "to_haiku",
           "to_keras", "to_onnx", "to_torch", "to_torch_stack"]
__version__ = "0.1.0"
