"""Deprecated: `jaxgru.DropoutMasks` is the masks' one public name (`jaxgru.GRUCell.dropout_masks`
draws them). Importing this module warns (`DeprecationWarning`); it goes in the next release."""

from jaxgru._deprecations import module_getattr, warn_deprecated_module

warn_deprecated_module(__name__)

from jaxgru._core.dropout import DropoutMasks, inverted_dropout_masks  # noqa: E402

__all__ = ["DropoutMasks", "inverted_dropout_masks"]

__getattr__ = module_getattr(__name__)
