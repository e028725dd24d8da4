"""jaxgru: Keras's GRUCell and GRU layer as pure JAX functions."""

from jaxgru import _deprecations
from jaxgru._core.cell import GRUCell
from jaxgru._core.dropout import DropoutMasks
from jaxgru._core.recurrent import bidirectional, rnn
from jaxgru._core.stacked import stacked_rnn
from jaxgru.interop.cudnn import from_cudnn, to_cudnn
from jaxgru.interop.equinox import from_equinox, to_equinox
from jaxgru.interop.flax import from_flax_linen, from_flax_nnx, to_flax_linen
from jaxgru.interop.haiku import from_haiku, to_haiku
from jaxgru.interop.keras import from_keras, to_keras
from jaxgru.interop.keras_files import load_keras_weights
from jaxgru.interop.keras_layers import layer_from_config
from jaxgru.interop.onnx import from_onnx, to_onnx
from jaxgru.interop.torch import from_torch, from_torch_stack, to_torch, to_torch_stack

__all__ = ["DropoutMasks", "GRUCell", "bidirectional", "from_cudnn", "from_equinox", "from_flax_linen", "from_flax_nnx",
           "from_haiku", "from_keras", "from_onnx", "from_torch", "from_torch_stack", "layer_from_config",
           "load_keras_weights", "rnn", "stacked_rnn", "to_cudnn", "to_equinox", "to_flax_linen", "to_haiku",
           "to_keras", "to_onnx", "to_torch", "to_torch_stack"]
__version__ = "0.1.0"

_deprecations.install_fileless_modules()  # `from jaxgru.rnn import ...` (the module of earlier releases) warns
