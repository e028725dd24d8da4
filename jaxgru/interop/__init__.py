"""Weight interop: Keras lists and files, PyTorch ``nn.GRU`` state dicts, cuDNN's flat buffer.

All converters return numpy params in Keras's layout (``kernel (D, 3U)``,
``recurrent_kernel (U, 3U)``, ``bias (3U,) | (2, 3U)``, gates [z, r, h]), the layout every
jaxgru function takes.
"""

from jaxgru.interop.cudnn import from_cudnn, to_cudnn
from jaxgru.interop.keras import from_keras, to_keras
from jaxgru.interop.keras_files import load_keras_weights
from jaxgru.interop.torch import from_torch, from_torch_stack, to_torch, to_torch_stack

__all__ = ["from_cudnn", "from_keras", "from_torch", "from_torch_stack", "load_keras_weights", "to_cudnn", "to_keras",
           "to_torch", "to_torch_stack"]
