"""Keras's activations, initializers, regularizers and constraints, resolved to JAX functions.

`base` holds `KerasObject` (a hashable, validated Keras config) and the field checkers;
one module per kind holds its registry of factories and its ``get``. The public modules
`jaxgru.activations`, `jaxgru.initializers`, `jaxgru.regularizers` and `jaxgru.constraints`
re-export what a user calls.
"""
