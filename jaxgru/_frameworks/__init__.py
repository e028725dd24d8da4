"""jaxgru's cell and runners as the modules of other frameworks: Flax linen (`linen`), Flax
NNX (`nnx`), Equinox (`equinox`) and Keras 3 (`keras3`), with what the two Flax APIs share
(`wrappers`). The public modules `jaxgru.linen`, `jaxgru.nnx`, `jaxgru.equinox` and
`jaxgru.keras` re-export them; each imports its framework, which ``import jaxgru`` does not.
"""
