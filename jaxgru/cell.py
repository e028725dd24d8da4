"""Deprecated: `jaxgru.GRUCell` is the cell's one public name. Importing this module warns
(`DeprecationWarning`); it goes in the next release."""

from jaxgru._deprecations import warn_deprecated_module

warn_deprecated_module(__name__)

from jaxgru._core.cell import GRUCell  # noqa: E402

__all__ = ["GRUCell"]
