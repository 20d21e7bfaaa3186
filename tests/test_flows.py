"""Max-min fair sharing against hand-computed rates and completion times."""

import pytest
import simpy

from fabricsim.engine.flows import FlowNetwork
from fabricsim.engine.maxmin import max_min_rates
from fabricsim.units import PS_PER_S


class _F:
    def __init__(self, *links):
        self.links = links


def test_progressive_filling_textbook_case():
    # link 0 (10 units) carries f1, f2; link 1 (4 units) carries f2, f3: link 1 fixes f2 = f3 = 2,
    # then f1 takes what f2 leaves on link 0.
    f1, f2, f3 = _F(0), _F(0, 1), _F(1)
    rates = max_min_rates([f1, f2, f3], [10.0, 4.0])
    assert rates == {f1: 8.0, f2: 2.0, f3: 2.0}


@pytest.mark.parametrize("k", [1, 2, 3, 7])
def test_k_flows_on_one_link_each_get_one_kth(k):
    flows = [_F(0) for _ in range(k)]
    assert all(rate == pytest.approx(100.0 / k) for rate in max_min_rates(flows, [100.0]).values())


def _finish_times(capacity_bps, flows_links, nbits, starts_ps=None):
    env = simpy.Environment()
    network = FlowNetwork(env, capacity_bps)
    done = {}
    starts_ps = starts_ps or [0] * len(flows_links)

    def launch(i):
        network.start(tuple(flows_links[i]), nbits[i], lambda: done.__setitem__(i, env.now))

    for i, start in enumerate(starts_ps):
        env.timeout(start).callbacks.append(lambda _e, i=i: launch(i))
    env.run()
    return [done[i] for i in range(len(flows_links))]


def test_two_flows_on_one_bottleneck_take_twice_as_long():
    bits, rate = 8e6, 1e9  # 1 ms alone
    (alone,) = _finish_times([rate], [[0]], [bits])
    shared = _finish_times([rate], [[0], [0]], [bits, bits])
    assert alone == bits / rate * PS_PER_S
    assert shared == [2 * alone, 2 * alone]


def test_flow_crossing_two_bottlenecks_gets_the_smaller_share():
    # link 0: 1 Gbps shared by A and B (0.5 each); link 1: 1 Gbps shared by A, C, D (1/3 each).
    bits = 1e6
    a, b, c, d = _finish_times([1e9, 1e9], [[0, 1], [0], [1], [1]], [bits] * 4)
    third_ps = bits / (1e9 / 3) * PS_PER_S
    assert a == pytest.approx(third_ps, abs=1)  # A is held to 1/3 by link 1
    assert c == d == a
    # B gets the 2/3 of link 0 that A leaves: done at 1.5 ms
    assert b == pytest.approx(bits / (2e9 / 3) * PS_PER_S, abs=1)


def test_late_arrival_re_rates_the_running_flow():
    # A alone for 1 ms at 1 Gbps (sends 1e6 of its 3e6 bits), then shares with B: both at 0.5 Gbps.
    # B (1e6 bits) ends 2 ms after it started, at 3 ms; A then has 0 bits... check by hand:
    # A: 1e6 bits by 1 ms, 1e6 more by 3 ms (at 0.5 Gbps), last 1e6 alone by 4 ms.
    a, b = _finish_times([1e9], [[0], [0]], [3e6, 1e6], starts_ps=[0, 10**9])
    assert b == 3 * 10**9
    assert a == 4 * 10**9


def test_disjoint_flows_do_not_touch_each_other():
    times = _finish_times([1e9, 1e9], [[0], [1]], [1e6, 2e6])
    assert times == [10**9, 2 * 10**9]
