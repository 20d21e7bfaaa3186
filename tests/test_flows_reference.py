"""The flow network against a plainly written max-min reference, on random oversubscribed leaf-spines.

The reference below knows nothing of the engine: exact fractions, one event at a time, textbook
progressive filling one bottleneck link at a time; links may go down (their flows stall) or slow
down for a while. Both follow the model's timing rule: a flow whose rate changes completes
``round(remaining bits / rate)`` picoseconds later, one that keeps its rate keeps its completion.
Floating point may move a completion by a picosecond where the exact quotient sits on a rounding
boundary, so end, busy and stalled times are held to a picosecond per flow or change; rates (sampled
inside the reference's intervals), bits and peak flow counts to the float.
The two max-min kernels are also held equal to each other to the bit.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from fabricsim.engine.flows import FlowNetwork
from fabricsim.engine.maxmin import _filled_in_numpy, _filled_plainly
from fabricsim.fabric import Router, build_fabric
from fabricsim.units import PS_PER_S
from tests.conftest import make_scenario


def textbook_max_min(links_of: list[tuple[int, ...]], capacity: dict[int, Fraction]) -> list[Fraction]:
    """Progressive filling in exact arithmetic: the link with the least share per unfixed flow
    (the first such by index) fixes its flows; repeat."""
    rates: list[Fraction | None] = [None] * len(links_of)
    left = dict(capacity)
    while any(rate is None for rate in rates):
        unfixed = {link: [f for f, links in enumerate(links_of) if rates[f] is None and link in links]
                   for link in left}
        link = min((link for link in unfixed if unfixed[link]),
                   key=lambda link: (left[link] / len(unfixed[link]), link))
        share = left[link] / len(unfixed[link])
        for flow in unfixed[link]:
            rates[flow] = share
            for other in links_of[flow]:
                left[other] -= share
    return rates  # type: ignore[return-value]


def reference_run(capacity: dict[int, Fraction], flows: list[tuple[int, tuple[int, ...], int]],
                  changes: list[tuple[int, int, float]] = ()) -> dict:
    """Flows (start_ps, links, bits) on links of ``capacity``, which ``changes`` (time_ps, link,
    new capacity; applied in their order at one time) set: each flow's end and time stalled, the
    rates over each interval between events, and per link bits, busy time and peak flow count."""
    capacity = dict(capacity)
    remaining = {f: Fraction(bits) for f, (_, _, bits) in enumerate(flows)}
    stalled = {f: 0 for f in range(len(flows))}
    pending = list(changes)
    rate: dict[int, Fraction] = {}
    end: dict[int, int] = {}
    active: list[int] = []
    done: dict[int, int] = {}
    intervals = []  # (from_ps, to_ps, {flow: rate})
    busy = {link: 0 for link in capacity}
    peak = {link: 0 for link in capacity}
    now = 0
    while len(done) < len(flows):
        starts = [start for f, (start, _, _) in enumerate(flows) if f not in done and f not in active]
        nxt = min(starts + [end[f] for f in active if f in end] + [t for t, _, _ in pending])
        for f in active:
            remaining[f] -= rate[f] * (nxt - now) / PS_PER_S
            stalled[f] += (nxt - now) * (rate[f] == 0)
        for link in capacity:
            if any(link in flows[f][1] for f in active):
                busy[link] += nxt - now
        intervals.append((now, nxt, dict(rate)))
        now = nxt
        for f in [f for f in active if end.get(f) == now]:
            active.remove(f)
            done[f] = now
            del rate[f], end[f]
        for f, (start, links, bits) in enumerate(flows):
            if start == now and f not in done and f not in active:
                if bits:
                    active.append(f)
                else:
                    done[f] = now
        for t, link, capacity_bps in [change for change in pending if change[0] == now]:
            capacity[link] = Fraction(capacity_bps)
        pending = [change for change in pending if change[0] != now]
        new_rates = textbook_max_min([flows[f][1] for f in active], capacity)
        for f, new in zip(active, new_rates):
            if rate.get(f) != new:
                rate[f] = new
                end.pop(f, None)
                if new:
                    end[f] = now + round(remaining[f] * PS_PER_S / new)
        for link in capacity:
            peak[link] = max(peak[link], sum(link in flows[f][1] for f in active))
    carried = {link: sum(bits for _, links, bits in flows if link in links) for link in capacity}
    return {"end": [done[f] for f in range(len(flows))], "intervals": intervals, "busy": busy, "peak": peak,
            "carried": carried, "stalled": [stalled[f] for f in range(len(flows))]}


def engine_run(capacity_bps: list[float], flows: list[tuple[int, tuple[int, ...], int]], probes_ps: list[int],
               changes: list[tuple[int, int, float]] = ()):
    env = simpy.Environment()
    network = FlowNetwork(env, capacity_bps)
    started, ends, seen = {}, {}, {}

    def start(f):
        _, links, bits = flows[f]
        started[f] = network.start(links, float(bits), lambda: ends.__setitem__(f, env.now))

    def probe(t):
        seen[t] = {f: flow.rate_bps for f, flow in started.items() if f not in ends}

    for f, (start_ps, _, _) in enumerate(flows):
        env.timeout(start_ps).callbacks.append(lambda _e, f=f: start(f))
    for t in probes_ps:
        env.timeout(t).callbacks.append(lambda _e, t=t: probe(t))
    for t, link, new_bps in changes:
        env.timeout(t).callbacks.append(lambda _e, link=link, new_bps=new_bps: network.set_capacity((link,), new_bps))
    env.run()
    return ([ends[f] for f in range(len(flows))], seen, network.usage.closed(network.flows_on, env.now),
            [started[f].stalled_ps for f in range(len(flows))])


@st.composite
def leaf_spine_flows(draw):
    """An oversubscribed leaf-spine and flows between its GPUs on ECMP-hashed routes, starting at a
    few shared times with a few shared sizes, so they meet, touch, start and end together; and
    now and then a link that goes down or slows for a while."""
    per_leaf, leaves = draw(st.integers(1, 3)), draw(st.integers(2, 3))
    fabric = build_fabric(make_scenario(fabric={
        "topology": "leaf_spine", "hosts": per_leaf * leaves, "gpus_per_host": 1,
        "clos": {"hosts_per_leaf": per_leaf, "spines": draw(st.integers(1, 3)),
                 "oversubscription": draw(st.sampled_from([1, 2, 3])), "ecmp": "hash"}}).fabric)
    router = Router(fabric)
    hosts = len(fabric.gpus)
    flows = []
    for _ in range(draw(st.integers(1, 10))):
        src = draw(st.integers(0, hosts - 1))
        dst = (src + draw(st.integers(1, hosts - 1))) % hosts
        route = router.route(fabric.gpus[src], fabric.gpus[dst], draw(st.integers(0, 2**31)))
        flows.append((draw(st.sampled_from([0, 0, 2_000_000, 5_000_000, 6_400_000])), route.links,
                      draw(st.sampled_from([0, 100_000, 160_000, 400_000, 1_000_000]))))
    capacity_bps = [link.bandwidth_bps for link in fabric.links]
    changes = []  # links going down (capacity 0: their flows stall) or slowing, and coming back
    used = sorted({link for _, links, _ in flows for link in links})
    for _ in range(draw(st.integers(0, 2))):
        link, down_ps = draw(st.sampled_from(used)), draw(st.sampled_from([0, 1_000_000, 2_000_000, 5_000_000]))
        changes += [(down_ps, link, capacity_bps[link] * draw(st.sampled_from([0.0, 0.5]))),
                    (down_ps + draw(st.sampled_from([500_000, 3_000_000])), link, capacity_bps[link])]
    return capacity_bps, flows, changes


@settings(max_examples=150, deadline=None)
@given(leaf_spine_flows())
def test_the_engine_is_the_reference_on_random_leaf_spines(case):
    capacity_bps, flows, changes = case
    used = sorted({link for _, links, _ in flows for link in links})
    reference = reference_run({link: Fraction(capacity_bps[link]) for link in used}, flows, changes)
    slack_ps = len(flows) + len(changes)
    probes = [(low + high) // 2 for low, high, _ in reference["intervals"] if high - low > 4 * slack_ps]
    ends, rates_seen, usage, stalled = engine_run(capacity_bps, flows, probes, changes)

    assert ends == pytest.approx(reference["end"], abs=slack_ps)
    assert [stalled[f] for f in range(len(flows)) if flows[f][2]] == \
        pytest.approx([reference["stalled"][f] for f in range(len(flows)) if flows[f][2]], abs=slack_ps)
    for low, high, rates in reference["intervals"]:
        if (low + high) // 2 in rates_seen:
            seen = rates_seen[(low + high) // 2]
            assert seen.keys() == rates.keys()
            assert all(seen[f] == pytest.approx(float(rates[f]), rel=1e-12) for f in rates)
    for link in used:
        assert usage.carried_bits[link] == pytest.approx(reference["carried"][link], rel=1e-12)
        assert usage.busy_ps[link] == pytest.approx(reference["busy"][link], abs=2 * slack_ps)
        assert usage.peak_flows[link] == reference["peak"][link]
    assert sum(usage.carried_bits) == pytest.approx(sum(reference["carried"].values()), rel=1e-12)


@st.composite
def incidences(draw):
    links = draw(st.integers(1, 8))
    capacity = draw(st.lists(st.sampled_from([0.0, 1e9, 2.5e9, 1e10, 4e10, 1e11]), min_size=links, max_size=links))
    links_of = draw(st.lists(st.lists(st.integers(0, links - 1), min_size=1, max_size=4, unique=True).map(tuple),
                             min_size=1, max_size=80))
    return links_of, capacity


@settings(max_examples=200, deadline=None)
@given(incidences())
def test_both_kernels_give_the_textbook_rates_and_each_others_to_the_bit(case):
    links_of, capacity = case
    plain, vectorised = _filled_plainly(links_of, capacity), _filled_in_numpy(links_of, capacity)
    assert plain == vectorised
    exact = textbook_max_min(links_of, {link: Fraction(bps) for link, bps in enumerate(capacity)})
    assert plain == pytest.approx([float(rate) for rate in exact], rel=1e-12, abs=1e-3)


@settings(max_examples=100, deadline=None)
@given(incidences(), incidences())
def test_components_rated_together_get_their_rates_alone_to_the_bit(first, second):
    """One instant may touch several components: rating them at once changes no bit of any."""
    (links_a, capacity_a), (links_b, capacity_b) = first, second
    shifted = [tuple(link + len(capacity_a) for link in links) for links in links_b]
    together = capacity_a + capacity_b
    for kernel in (_filled_plainly, _filled_in_numpy):
        assert kernel(links_a + shifted, together) == kernel(links_a, capacity_a) + kernel(links_b, capacity_b)
