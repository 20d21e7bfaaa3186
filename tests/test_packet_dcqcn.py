"""DCQCN on real queues: N flows into one port converge to a fair share and hold the queue near the ECN
thresholds (Zhu et al., SIGCOMM 2015), where PFC alone lets it grow to the pause thresholds."""

import numpy as np
import pytest
import simpy

from fabricsim.collectives.schedule import Schedule, Transfer
from fabricsim.config import DcqcnSpec
from fabricsim.engine.impairments import TransferImpairments, Transport, rto_ps
from fabricsim.engine.packet_dcqcn import DcqcnReactionPoint
from fabricsim.engine.packet_executor import PacketScheduleRun
from fabricsim.engine.packet_loop import EventLoop
from fabricsim.engine.packet_network import PacketNetwork
from fabricsim.runner.simulation import Simulation
from tests.conftest import make_scenario

SENDERS = 4
FLOW_BYTES = 6 * 2**20
STAGGER_PS = 100_000_000  # sender i starts at i x 100 us
WINDOW_PS = (1_000_000_000, 1_600_000_000)  # after the last sender joined and rates settled


def jain(values) -> float:
    values = np.asarray(values, dtype=float)
    return float(values.sum() ** 2 / (len(values) * (values**2).sum()))


def run_incast(dcqcn: bool):
    """SENDERS long flows into host 0, staggered; each flow's bytes and the bottleneck queue in the window."""
    scenario = make_scenario(fabric={"model": "packet", "hosts": SENDERS + 1, "nic": "roce_100g",
                                     "packet": {"dcqcn": {"enabled": dcqcn}, "pfc": {"xoff": "600KB"}}})
    simulation = Simulation(scenario)
    network = PacketNetwork(simulation.fabric, scenario.fabric.nic, scenario.fabric.packet, 0.0,
                            np.random.default_rng(1))
    transfers = tuple(Transfer(i, i + 1, 0, FLOW_BYTES) for i in range(SENDERS))
    schedule = Schedule("gather", "direct", SENDERS + 1, FLOW_BYTES * SENDERS, transfers)
    impairments = TransferImpairments(np.arange(SENDERS, dtype=np.int64) * STAGGER_PS,
                                      *(np.zeros(SENDERS, dtype=np.int64),) * 2, np.zeros(SENDERS, dtype=bool))
    bottleneck = network.ports[simulation.route(1, 0).links[-2]]  # switch -> receiver's NIC
    snapshots = []
    for time_ps in WINDOW_PS:
        network.loop.at(time_ps, lambda _arg: snapshots.append(
            ([qp.received_bytes for qp in network.queue_pairs], len(bottleneck.depth_samples))))
    env = simpy.Environment()
    run = PacketScheduleRun(env, network, schedule, simulation.route, impairments,
                            Transport(scenario.fabric.nic.mtu_bytes, rto_ps(20), 7))
    env.run(until=run.done)
    (bytes_1, depth_1), (bytes_2, depth_2) = snapshots
    depths = bottleneck.depth_samples[depth_1:depth_2]
    return np.subtract(bytes_2, bytes_1), np.asarray(depths), bottleneck, network


def test_dcqcn_converges_to_a_fair_share_with_the_queue_near_the_ecn_thresholds():
    shares, depths, bottleneck, network = run_incast(dcqcn=True)
    assert len(shares) == SENDERS
    assert jain(shares) > 0.95, shares
    assert bottleneck.kmin_bytes / 2 < np.median(depths) < bottleneck.kmax_bytes, np.median(depths)
    assert sum(port.cnps for port in network.ports) > 0


def test_without_dcqcn_pfc_alone_holds_the_queue_at_the_pause_thresholds():
    _shares, depths, bottleneck, network = run_incast(dcqcn=False)
    assert np.median(depths) > bottleneck.kmax_bytes
    assert sum(port.pause_frames for port in network.ports) > 0



def test_reaction_point_cuts_by_alpha_then_recovers_halfway_to_its_target_each_timer():
    """First CNP: alpha = 1; four alpha intervals without CNP before the decrease check: alpha = (1-g)^4,
    rate = line (1 - alpha / 2); each increase tick then halves the gap to the target (line rate)."""
    spec, line_bps = DcqcnSpec(), 100e9
    loop = EventLoop()
    point = DcqcnReactionPoint(loop, spec, line_bps, busy=lambda: True)
    point.on_cnp()
    loop.advance_to(spec.rate_decrease_interval_ps + 1)
    cut_bps = line_bps * (1 - (1 - spec.g) ** 4 / 2)
    assert point.rate_bps == pytest.approx(cut_bps) and point.target_bps == line_bps
    for ticks in range(1, spec.fast_recovery_steps + 3):
        loop.advance_to(spec.rate_decrease_interval_ps + 1 + ticks * spec.rate_increase_timer_ps)
        assert point.rate_bps == pytest.approx(line_bps - (line_bps - cut_bps) / 2**ticks)
    # a CNP after recovery began: the target is clamped to the rate, which is cut again
    rate_bps, alpha = point.rate_bps, point.alpha
    point.on_cnp()
    loop.advance_to(loop.now + spec.rate_decrease_interval_ps)
    assert point.target_bps == pytest.approx(rate_bps)
    assert point.rate_bps < rate_bps and point.alpha > alpha * (1 - spec.g) ** 4


def test_reaction_point_never_goes_below_the_minimum_rate():
    spec = DcqcnSpec(min_rate="40Gbps")
    loop = EventLoop()
    point = DcqcnReactionPoint(loop, spec, 100e9, busy=lambda: True)
    for interval in range(20):
        point.on_cnp()
        loop.advance_to((interval + 1) * spec.rate_decrease_interval_ps + 1)
    assert point.rate_bps == 40e9


def test_timers_sleep_while_the_queue_pair_has_nothing_to_send():
    """A queue pair waiting out a 4 s timeout must not tick its 1 us timer 4 million times."""
    spec, sending = DcqcnSpec(), [False]
    loop = EventLoop()
    point = DcqcnReactionPoint(loop, spec, 100e9, busy=lambda: sending[0])
    point.on_cnp()
    loop.advance_to(10**9)
    assert not loop.heap and point.asleep_since_ps is not None
    sending[0] = True
    point.wake()  # alpha decays as if its timer had run throughout
    assert point.alpha == pytest.approx((1 - spec.g) ** (10**9 // spec.alpha_resume_interval_ps))
    assert loop.heap
