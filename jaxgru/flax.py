"""``jaxgru.flax`` is `jaxgru.linen` under its first name: the same Flax linen modules."""

from jaxgru.linen import GRU, Bidirectional, GRUCell, StackedGRU, constrain, find_cells, penalty

__all__ = ["Bidirectional", "GRU", "GRUCell", "StackedGRU", "constrain", "find_cells", "penalty"]
