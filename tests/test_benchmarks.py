"""Every peer of the benchmark harness builds and runs its forward and both train steps (no
timing here: speed lives in benchmarks/ and benchmarks/RESULTS.md)."""

import numpy as np
import pytest
from references import HEAVY

from benchmarks.peers import PEERS, Problem, Unsupported

TINY = Problem(batch=2, steps=3, features=2, units=3, reset_after=True, lengths=np.array([3, 2]))
PROBLEMS = {"reset_after-masked": TINY, "reset_before": TINY._replace(reset_after=False, lengths=None)}
# What each library cannot run: one convention only, or no mask.
UNSUPPORTED = {("flax linen", "reset_before"), ("flax nnx", "reset_before"), ("equinox", "reset_before"),
               ("torch", "reset_before"), ("haiku", "reset_after-masked")}


# The peers that import TensorFlow or torch (Keras 3, on JAX here, imports TensorFlow
# where it is installed: references.py).
HEAVY_PEERS = {"keras 3 (jax)", "tf_keras", "torch"}


@pytest.mark.parametrize("peer", [pytest.param(peer, marks=HEAVY) if peer in HEAVY_PEERS else peer
                                  for peer in sorted(PEERS)])
@pytest.mark.parametrize("problem", sorted(PROBLEMS))
def test_peer_runs_or_says_why_not(peer, problem):
    if (peer, problem) in UNSUPPORTED:
        with pytest.raises(Unsupported):
            PEERS[peer](PROBLEMS[problem])
        return
    runner = PEERS[peer](PROBLEMS[problem])
    runner.forward()
    runner.train()
    runner.params_only()
