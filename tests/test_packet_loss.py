"""Random loss on packets: a gap is NACKed and resent by go-back-N; a lost tail waits one RTO
(4.096 us x 2^exponent); retry_count timeouts without progress fail the queue pair and the trial."""

from fabricsim.engine.impairments import rto_ps
from fabricsim.runner.simulation import Simulation
from tests.conftest import make_scenario


def send(loss: dict, size: str = "1MiB", trials: int = 1):
    scenario = make_scenario(fabric={"model": "packet", "hosts": 2, "nic": "roce_100g"},
                             collective={"op": "send_recv", "algorithm": "direct"},
                             workload={"rule": "data_sizes", "data_sizes": [size], "trials": trials},
                             impairments={"loss": loss})
    return Simulation(scenario).run()


def total(record, counter: str) -> int:
    return sum(getattr(port, counter) for port in record.ports)


def test_a_gap_is_nacked_and_resent_from_the_lost_packet():
    (clean,) = send({"rate": 0.0}, size="4MiB")
    (lossy,) = send({"rate": 0.01, "timeout_exponent": 3}, size="4MiB")
    assert not lossy.failed
    assert total(lossy, "losses") > 0 and total(lossy, "nacks") > 0
    # go-back-N resends the lost packet and those already sent behind it
    assert total(lossy, "retransmits") >= total(lossy, "losses")
    assert lossy.latency_ps > clean.latency_ps


def test_a_lost_tail_costs_a_retransmission_timeout():
    """One packet, lost: nothing follows it to reveal a gap, so only the timeout recovers it."""
    records = send({"rate": 0.5, "timeout_exponent": 5, "retry_count": 7}, size="1KiB", trials=16)
    (clean,) = send({"rate": 0.0}, size="1KiB")
    for record in records:
        timeouts = total(record, "timeouts")
        assert total(record, "nacks") == 0
        if not record.failed:
            # the timer starts when the packet has left the GPU's PCIe link: 1 KiB at 32 GB/s = 32 ns
            assert record.latency_ps == clean.latency_ps + timeouts * (rto_ps(5) + 32_000)
    assert any(total(record, "timeouts") for record in records)


def test_the_queue_pair_fails_after_its_retries():
    (record,) = send({"rate": 0.99, "timeout_exponent": 2, "retry_count": 2}, size="1KiB")
    assert record.failed
    assert total(record, "timeouts") == 3


def test_the_same_seed_gives_the_same_trials_packet_by_packet():
    """Loss and RED marking draw from the trial's own stream: reruns are identical, counters included."""
    first = send({"rate": 0.02, "timeout_exponent": 3}, size="1MiB", trials=3)
    again = send({"rate": 0.02, "timeout_exponent": 3}, size="1MiB", trials=3)
    assert first == again
    assert len({record.latency_ps for record in first}) > 1  # and trials differ from each other
