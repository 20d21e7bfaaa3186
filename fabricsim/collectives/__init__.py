"""Collective algorithms: builders that turn (op, algorithm, ranks, S, options) into a transfer schedule.

Builders are pure functions returning a ``fabricsim.collectives.schedule.Schedule``; ``verify`` checks that a
schedule computes its collective. ``ALGORITHMS`` maps (op, algorithm) to a builder and the options
it takes: ``chunks`` (pipelining), ``root`` (rooted ops), ``local_ranks`` (GPUs per host),
``orders`` and ``trees`` (each channel's ring or tree), ``groups`` (each host's ranks) and ``leaves``
(each host's leaf switch group, for SHARP's aggregation trees).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fabricsim.collectives.collnet import collnet
from fabricsim.collectives.direct import direct_all_to_all, direct_gather, direct_send_recv, pxn_all_to_all
from fabricsim.collectives.hierarchical import hierarchical_all_reduce
from fabricsim.collectives.nvls import nvls, nvls_all_reduce, nvls_tree_all_reduce
from fabricsim.collectives.pat import pat
from fabricsim.collectives.recursive import (halving_doubling_all_reduce, recursive_doubling_all_gather,
                                             recursive_doubling_all_reduce, recursive_halving_reduce_scatter)
from fabricsim.collectives.ring import Orders, bidirectional_ring_all_reduce, channel_ring, flat_ring
from fabricsim.collectives.trees import (Trees, binomial_broadcast, binomial_reduce, chain_broadcast, chain_reduce,
                                         double_binary_tree_all_reduce, tree_all_reduce)
from fabricsim.collectives.schedule import Schedule
from fabricsim.collectives.verify import ScheduleError, verify


@dataclass(frozen=True, slots=True)
class Algorithm:
    build: Callable[..., Schedule]  # (ranks, size_bytes, **options)
    options: tuple[str, ...] = ()


ALGORITHMS: dict[tuple[str, str], Algorithm] = {
    ("all_gather", "ring"): Algorithm(channel_ring("all_gather"), ("chunks", "orders")),
    ("all_gather", "flat_ring"): Algorithm(flat_ring("all_gather"), ("chunks",)),
    ("all_gather", "recursive_doubling"): Algorithm(recursive_doubling_all_gather),
    ("all_gather", "pat"): Algorithm(pat("all_gather")),
    ("all_gather", "nvls"): Algorithm(nvls("all_gather")),
    ("reduce_scatter", "ring"): Algorithm(channel_ring("reduce_scatter"), ("chunks", "orders")),
    ("reduce_scatter", "flat_ring"): Algorithm(flat_ring("reduce_scatter"), ("chunks",)),
    ("reduce_scatter", "recursive_halving"): Algorithm(recursive_halving_reduce_scatter),
    ("reduce_scatter", "pat"): Algorithm(pat("reduce_scatter")),
    ("reduce_scatter", "nvls"): Algorithm(nvls("reduce_scatter")),
    ("all_reduce", "ring"): Algorithm(channel_ring("all_reduce"), ("chunks", "orders")),
    ("all_reduce", "flat_ring"): Algorithm(flat_ring("all_reduce"), ("chunks",)),
    ("all_reduce", "bidirectional_ring"): Algorithm(bidirectional_ring_all_reduce, ("chunks",)),
    ("all_reduce", "halving_doubling"): Algorithm(halving_doubling_all_reduce),
    ("all_reduce", "recursive_doubling"): Algorithm(recursive_doubling_all_reduce),
    ("all_reduce", "double_binary_tree"): Algorithm(double_binary_tree_all_reduce, ("chunks",)),
    ("all_reduce", "tree"): Algorithm(tree_all_reduce, ("chunks", "trees")),
    ("all_reduce", "nvls"): Algorithm(nvls_all_reduce, ("groups", "leaves")),
    ("all_reduce", "nvls_tree"): Algorithm(nvls_tree_all_reduce, ("groups",)),
    ("all_reduce", "collnet_direct"): Algorithm(collnet(chain=False), ("groups", "leaves")),
    ("all_reduce", "collnet_chain"): Algorithm(collnet(chain=True), ("groups", "leaves")),
    ("all_reduce", "hierarchical"): Algorithm(hierarchical_all_reduce, ("chunks", "local_ranks")),
    ("broadcast", "ring"): Algorithm(chain_broadcast, ("chunks", "root")),
    ("broadcast", "binomial_tree"): Algorithm(binomial_broadcast, ("root",)),
    ("reduce", "ring"): Algorithm(chain_reduce, ("chunks", "root")),
    ("reduce", "binomial_tree"): Algorithm(binomial_reduce, ("root",)),
    ("gather", "direct"): Algorithm(direct_gather, ("root",)),
    ("all_to_all", "direct"): Algorithm(direct_all_to_all),
    ("all_to_all", "pxn"): Algorithm(pxn_all_to_all, ("local_ranks",)),
    ("send_recv", "direct"): Algorithm(direct_send_recv, ("root",)),
}

__all__ = ["ALGORITHMS", "Algorithm", "ScheduleError", "algorithms_for", "build_schedule", "verify"]


def algorithms_for(op: str) -> list[str]:
    """The algorithms registered for ``op``, sorted by name."""
    return sorted(name for known_op, name in ALGORITHMS if known_op == op)


def build_schedule(op: str, algorithm: str, ranks: int, size_bytes: int, chunks: int = 1, *,
                   root: int = 0, local_ranks: int = 1, orders: Orders | None = None,
                   trees: Trees | None = None, groups: tuple[tuple[int, ...], ...] | None = None,
                   leaves: tuple[int, ...] = ()) -> Schedule:
    """Build the schedule of ``op`` by ``algorithm`` over ``ranks`` ranks for an S = ``size_bytes`` buffer.

    ``chunks`` pipelines the algorithms that pipeline and is ignored by the others; ``orders`` and
    ``trees`` give ``ring``'s and ``tree``'s channels (``fabricsim.collectives.channels``): one ring in
    rank order, the double binary tree over the ranks, if None; ``groups`` each host's ranks (if None,
    one host of all for NVLSTree, one host per rank for CollNet), ``leaves`` each host's leaf (CollNet's
    aggregation tree: one level if empty or all 0). Raises
    ``ValueError`` for an unknown op or algorithm, a root outside the ranks, and for ranks < 2,
    chunks < 1 or size_bytes < 0.
    """
    if (op, algorithm) not in ALGORITHMS:
        ops = sorted({known_op for known_op, _ in ALGORITHMS})
        if op not in ops:
            raise ValueError(f"unknown collective op {op!r}; known ops: {', '.join(ops)}")
        raise ValueError(f"unknown algorithm {algorithm!r} for {op}; known: {', '.join(algorithms_for(op))}")
    if chunks < 1:
        raise ValueError(f"chunks must be >= 1, got {chunks}")
    entry = ALGORITHMS[(op, algorithm)]
    given = {"chunks": chunks, "root": root, "local_ranks": local_ranks, "orders": orders, "trees": trees,
             "groups": groups, "leaves": leaves}
    return entry.build(ranks, size_bytes, **{name: given[name] for name in entry.options})
