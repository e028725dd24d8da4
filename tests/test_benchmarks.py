"""Every peer of the benchmark harness builds and runs its forward and train steps (no
timing here: speed lives in benchmarks/ and benchmarks/RESULTS.md)."""

import numpy as np
import pytest

from benchmarks.peers import PEERS, Problem, Unsupported

TINY = Problem(batch=2, steps=3, features=2, units=3, reset_after=True, lengths=np.array([3, 2]))


@pytest.mark.parametrize("peer", sorted(PEERS))
@pytest.mark.parametrize("problem", [TINY, TINY._replace(reset_after=False, lengths=None)],
                         ids=["reset_after-masked", "reset_before"])
def test_peer_runs(peer, problem):
    try:
        runner = PEERS[peer](problem)
    except Unsupported:
        return  # e.g. a library with one convention only: the harness drops that row
    runner.forward()
    runner.train()
