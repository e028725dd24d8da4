"""Deprecated: `jaxgru.stacked_rnn` is the stack's one public name. Importing this module
warns (`DeprecationWarning`); it goes in the next release."""

from jaxgru._deprecations import module_getattr, warn_deprecated_module

warn_deprecated_module(__name__)

from jaxgru._core.stacked import stacked_rnn  # noqa: E402

__all__ = ["stacked_rnn"]

__getattr__ = module_getattr(__name__)
