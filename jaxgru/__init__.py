"""jaxgru: Keras's GRUCell and GRU layer as pure JAX functions."""

from jaxgru.cell import GRUCell
from jaxgru.dropout import DropoutMasks
from jaxgru.rnn import bidirectional, rnn
from jaxgru.interop import from_cudnn, from_keras, from_torch, load_keras_weights, to_cudnn, to_keras, to_torch

__all__ = ["GRUCell", "DropoutMasks", "rnn", "bidirectional",
           "from_keras", "to_keras", "from_torch", "to_torch", "from_cudnn", "to_cudnn", "load_keras_weights"]
__version__ = "0.1.0"
