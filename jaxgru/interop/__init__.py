"""Weight interop: Keras lists, files and layer configs, PyTorch ``nn.GRU`` state dicts,
cuDNN's flat buffer, ONNX's ``GRU`` operator, and the GRU cells of Flax, Equinox and Haiku.

All converters return numpy params in Keras's layout (``kernel (D, 3U)``,
``recurrent_kernel (U, 3U)``, ``bias (3U,) | (2, 3U)``, gates [z, r, h]), the layout every
jaxgru function takes.

One module per framework: `keras` (weight lists), `keras_files` (``.keras``/``.h5``
files), `keras_layers` (layer configs), `torch`, `cudnn`, `onnx`, `flax`, `equinox`,
`haiku`. Their converters are re-exported at the top level (``jaxgru.from_torch``), not
here.
"""

from jaxgru._deprecations import module_getattr
from jaxgru.interop import cudnn, equinox, flax, haiku, keras, keras_files, keras_layers, onnx, torch

__all__ = ["cudnn", "equinox", "flax", "haiku", "keras", "keras_files", "keras_layers", "onnx", "torch"]

__getattr__ = module_getattr(__name__)
