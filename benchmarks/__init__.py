"""jaxgru's benchmark harness: ``python -m benchmarks`` (see `benchmarks.run`)."""
