"""jaxgru's core: the cell (`cell`, `gates`), the time loop (`loop`), its hand-written
adjoints (`adjoints`), the choice of loop (`runner`), the public runners (`recurrent`:
`rnn`, `bidirectional`; `stacked`: `stacked_rnn`), the dropout masks (`dropout`) and the
argument checks (`layer_options`, `validation`). The package `jaxgru` re-exports the
public names.
"""
