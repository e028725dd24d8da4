"""Deprecated: ``jaxgru.flax`` is `jaxgru.linen` under its first name. Importing it warns
(`DeprecationWarning`); it goes in the next release."""

from jaxgru._deprecations import warn_deprecated_module

warn_deprecated_module(__name__)

from jaxgru.linen import GRU, Bidirectional, GRUCell, StackedGRU, constrain, find_cells, penalty  # noqa: E402

__all__ = ["Bidirectional", "GRU", "GRUCell", "StackedGRU", "constrain", "find_cells", "penalty"]
