"""Max-min fair rates by progressive filling, fixing every bottleneck link of a round at once.

Each round, every link's share is its capacity left divided by its flows not yet fixed; the least
share ``m`` is the round's level, every unfixed flow on a link at that level gets ``m``, and each
of their links gives up ``m`` times the number of them it carries. A round fixes all the links at
the level together, so an all-to-all on one switch is one round, whatever its size.

Two kernels do the same arithmetic in the same order, so their rates are equal to the bit: plain
Python for a few flows (numpy's call overhead would dominate), numpy over a flow x link incidence
for many. A set of disjoint components rated together gets, to the bit, each component's rates
alone: a round subtracts nothing from the links of a component whose level it is not.
"""

from __future__ import annotations

from typing import Mapping, Sequence, Union

import numpy as np

Capacities = Union[Sequence[float], Mapping[int, float]]  # by link index
SMALL_FLOWS = 48  # below this many flows the plain kernel is the faster


def max_min_rates_of(links_of: Sequence[tuple[int, ...]], capacity_bps: Capacities) -> list[float]:
    """The max-min fair rate of each flow (its links ``links_of[i]``) given the links' capacities
    (indexed by link); a flow over a link of capacity 0 gets 0."""
    if len(links_of) < SMALL_FLOWS:
        return _filled_plainly(links_of, capacity_bps)
    return _filled_in_numpy(links_of, capacity_bps)


def _filled_plainly(links_of: Sequence[tuple[int, ...]], capacity_bps: Capacities) -> list[float]:
    remaining: dict[int, float] = {}
    flows_on: dict[int, list[int]] = {}
    for flow, links in enumerate(links_of):
        for link in links:
            if link not in remaining:
                remaining[link] = capacity_bps[link]
                flows_on[link] = []
            flows_on[link].append(flow)
    unfixed = {link: len(flows) for link, flows in flows_on.items()}
    rates: list[float | None] = [None] * len(links_of)
    while unfixed:
        level = min(remaining[link] / count for link, count in unfixed.items())
        fixed = [flow for link, count in unfixed.items() if remaining[link] / count == level
                 for flow in flows_on[link] if rates[flow] is None]
        given: dict[int, int] = {}
        for flow in fixed:
            if rates[flow] is None:
                rates[flow] = max(level, 0.0)
                for link in links_of[flow]:
                    given[link] = given.get(link, 0) + 1
        for link, count in given.items():
            remaining[link] -= level * count
            unfixed[link] -= count
            if not unfixed[link]:
                del unfixed[link]
    return rates  # type: ignore[return-value]


def _filled_in_numpy(links_of: Sequence[tuple[int, ...]], capacity_bps: Capacities) -> list[float]:
    counts = np.fromiter((len(links) for links in links_of), dtype=np.int64, count=len(links_of))
    pair_flow = np.repeat(np.arange(len(links_of)), counts)
    pair_link = np.fromiter((link for links in links_of for link in links), dtype=np.int64, count=int(counts.sum()))
    return max_min_rates_over(pair_flow, pair_link, len(links_of), lambda used: [capacity_bps[link] for link in used]
                              ).tolist()


def max_min_rates_over(pair_flow: np.ndarray, pair_link: np.ndarray, flows: int, capacity_of) -> np.ndarray:
    """``max_min_rates_of`` over a flow x link incidence given as pairs (``pair_flow[k]`` uses
    ``pair_link[k]``) of ``flows`` flows; ``capacity_of(links)`` gives the capacities of the links used
    (an ascending list of link indices)."""
    used, pair_link = np.unique(pair_link, return_inverse=True)
    remaining = np.array(capacity_of(used.tolist()), dtype=np.float64)
    unfixed = np.bincount(pair_link, minlength=len(used))
    rates = np.zeros(flows)
    while len(pair_flow):
        loaded = unfixed > 0
        share = np.full(len(used), np.inf)
        share[loaded] = remaining[loaded] / unfixed[loaded]
        level = share.min()
        fixed = np.zeros(flows, dtype=bool)
        fixed[pair_flow[share[pair_link] == level]] = True
        rates[fixed] = max(level, 0.0)
        given = fixed[pair_flow]
        count = np.bincount(pair_link[given], minlength=len(used))
        remaining -= level * count
        unfixed -= count
        pair_flow, pair_link = pair_flow[~given], pair_link[~given]
    return rates


def max_min_rates(flows: Sequence, capacity_bps: Capacities) -> dict:
    """``max_min_rates_of`` keyed by the flows (anything with ``links``)."""
    return dict(zip(flows, max_min_rates_of([flow.links for flow in flows], capacity_bps)))
