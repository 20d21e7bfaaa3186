"""The yardstick of issue 8: a straightforward SimPy model of a ring all-reduce on one switch.

A ``simpy.Resource`` per link (a rank's uplink and downlink), a ``simpy.Store`` per rank for the
pieces it receives, one process per rank: for each of the 2 (p - 1) steps it takes the piece from
its predecessor (none at the first step), holds its uplink and its successor's downlink for the
piece's serialisation time and delivers it one latency later. No impairments, no breakdown, no
link usage: only the timing, which equals the alpha-beta time 2 (p - 1) (alpha + S/p beta), as
fabricsim's does for the same ring (``benchmarks/run.py ring_allreduce_1024_ranks``).
Usage: ``python benchmarks/naive_simpy.py RANKS`` prints the wall time and the simulated time.
"""

from __future__ import annotations

import sys
import time

import simpy

LINK_BPS = 100e9  # the default single-switch fabric's route: 100 Gb/s bottleneck, 3.12 us
LATENCY_PS = 3_120_000
SIZE_BYTES = 1 << 30


def ring_all_reduce_ps(ranks: int) -> int:
    env = simpy.Environment()
    uplinks = [simpy.Resource(env) for _ in range(ranks)]
    downlinks = [simpy.Resource(env) for _ in range(ranks)]
    inboxes = [simpy.Store(env) for _ in range(ranks)]
    send_ps = round(8 * SIZE_BYTES / ranks * 1e12 / LINK_BPS)

    def deliver(dst: int):
        yield env.timeout(LATENCY_PS)
        yield inboxes[dst].put(1)

    def rank(r: int):
        dst = (r + 1) % ranks
        for step in range(2 * (ranks - 1)):
            if step:
                yield inboxes[r].get()
            with uplinks[r].request() as up, downlinks[dst].request() as down:
                yield up & down
                yield env.timeout(send_ps)
            env.process(deliver(dst))

    for r in range(ranks):
        env.process(rank(r))
    env.run()
    return int(env.now)


if __name__ == "__main__":
    ranks = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    started = time.perf_counter()
    simulated_ps = ring_all_reduce_ps(ranks)
    print(f"naive SimPy ring all-reduce, {ranks} ranks: wall {time.perf_counter() - started:.1f} s, "
          f"simulated {simulated_ps / 1e6:.1f} us")
