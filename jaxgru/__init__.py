"""jaxgru: Keras's GRUCell and GRU layer as pure JAX functions."""

from jaxgru.cell import GRUCell
from jaxgru.dropout import DropoutMasks
from jaxgru.interop import (
    from_cudnn,
    from_keras,
    from_torch,
    from_torch_stack,
    load_keras_weights,
    to_cudnn,
    to_keras,
    to_torch,
    to_torch_stack,
)
from jaxgru.rnn import bidirectional, rnn
from jaxgru.stacked import stacked_rnn

__all__ = ["DropoutMasks", "GRUCell", "bidirectional", "from_cudnn", "from_keras", "from_torch", "from_torch_stack",
           "load_keras_weights", "rnn", "stacked_rnn", "to_cudnn", "to_keras", "to_torch", "to_torch_stack"]
__version__ = "0.1.0"
