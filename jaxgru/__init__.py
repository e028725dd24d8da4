"""jaxgru: Keras's GRUCell and GRU layer as pure JAX functions."""

from jaxgru.cell import GRUCell
from jaxgru.dropout import DropoutMasks
from jaxgru.rnn import bidirectional, rnn

__all__ = ["GRUCell", "DropoutMasks", "rnn", "bidirectional"]
__version__ = "0.1.0"
