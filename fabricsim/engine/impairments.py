"""Impairments: what a trial's random stream does to each transfer, drawn before the trial runs.

Jitter is a start delay per transfer from a named distribution or from measured samples. Loss is
per packet: a transfer of n bytes is ceil(n / MTU) packets. A lost packet that is not the last is
caught by the receiver's sequence check; go-back-N then costs a NACK round trip (2 x path latency)
and the resend of the lost packet and the one that revealed the gap (2 MTU). A lost last packet
leaves no gap to see: the sender waits for the RDMA retransmission timeout, 4.096 us x
2^timeout_exponent (InfiniBand Architecture Specification, Local ACK Timeout), and resends it;
after ``retry_count`` retries also lost, the queue pair fails and so does the trial.

Loss may also be given per link: a transfer's packets are lost at the rate of its first flow's
route, 1 - (1 - rate) x the product of (1 - link rate) over its links.

Launch skew delays each rank's start of a collective (stragglers): a transfer that waits on no
other waits for both its ranks, i.e. the later of their two launch delays.

Draws are vectorised over the transfers (or ranks) in schedule order, so they depend only on the
trial's stream and the schedule, never on the order events happen in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fabricsim.collectives.schedule import Schedule
from fabricsim.collectives.schedule_times import serialisation_ps_each
from fabricsim.config import DistributionSpec, LossSpec, Scenario
from fabricsim.units import PS_PER_DAY

RTO_BASE_PS = 4_096_000  # 4.096 us
MAX_DELAY_PS = PS_PER_DAY  # one day: a drawn delay is capped there, so picoseconds stay in int64


def rto_ps(timeout_exponent: int) -> int:
    return RTO_BASE_PS * 2**timeout_exponent


@dataclass(frozen=True, slots=True)
class TransferImpairments:
    """Per transfer (index = transfer id): what the fabric adds to it in this trial, and the fixed
    delay it waits in every trial (software latency; in a job's step, also its rank's compute before
    it), which counts in the ideal time, not as jitter."""

    start_delay_ps: np.ndarray  # int64, drawn: jitter and launch skew
    gap_losses: np.ndarray  # int64, go-back-N recoveries
    tail_timeouts: np.ndarray  # int64, consecutive losses of the last packet
    failed: np.ndarray  # bool, more tail losses than retries: the QP fails
    fixed_delay_ps: np.ndarray | None = None  # int64; None: none

    def fixed_ps(self) -> np.ndarray:
        """The fixed delay of each transfer (zeros when there is none)."""
        no_delay = self.fixed_delay_ps is None
        return np.zeros(len(self.start_delay_ps), dtype=np.int64) if no_delay else self.fixed_delay_ps

    def delay_ps(self) -> np.ndarray:
        """Each transfer's whole wait before it starts: its drawn start delay, then its fixed delay."""
        return self.start_delay_ps if self.fixed_delay_ps is None else self.start_delay_ps + self.fixed_delay_ps


@dataclass(frozen=True, slots=True)
class Transport:
    """The transport settings the loss rules play by: packet size, retransmission timeout, retries."""

    mtu_bytes: int
    rto_ps: int
    retry_count: int

    @classmethod
    def of(cls, scenario: Scenario) -> Transport:
        loss = scenario.impairments.loss
        return cls(scenario.fabric.nic.mtu_bytes, rto_ps(loss.timeout_exponent), loss.retry_count)


def loss_costs(gap_losses, tail_timeouts, latency_ps, transport: Transport):
    """What go-back-N adds to a transfer (ints) or to each transfer (arrays), by the rules above:
    the bytes resent (2 MTU a gap, 1 MTU a timeout up to the retry count), the NACK round trips and
    the timeouts waited, both in picoseconds, over a path of ``latency_ps``."""
    resent_bytes = (2 * gap_losses + np.minimum(tail_timeouts, transport.retry_count)) * transport.mtu_bytes
    return resent_bytes, gap_losses * 2 * latency_ps, tail_timeouts * transport.rto_ps


def loss_columns(impairments: TransferImpairments, rate_bps: np.ndarray, latency_ps: np.ndarray,
                 transport: Transport) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each transfer's go-back-N costs (``loss_costs``) over its route of ``rate_bps`` and ``latency_ps``
    (one each a transfer): the bytes resent, their wire time, the NACK round trips and the timeouts
    (picoseconds); all zero for a transfer that loses nothing."""
    resent_bytes, nack_ps, timeout_ps = loss_costs(impairments.gap_losses, impairments.tail_timeouts, latency_ps,
                                                   transport)
    return resent_bytes, serialisation_ps_each(8.0 * resent_bytes, rate_bps), nack_ps, timeout_ps


def draw_delays_ps(spec: DistributionSpec, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` non-negative delays in integer picoseconds from the named distribution, each capped
    at MAX_DELAY_PS (a heavy lognormal tail could otherwise overflow)."""
    match spec.distribution:
        case "none":
            return np.zeros(count, dtype=np.int64)
        case "constant":
            values = np.full(count, float(spec.value_ps))
        case "normal":
            values = np.maximum(rng.normal(spec.mean_ps, spec.std_ps, count), 0.0)
        case "lognormal":
            values = spec.median_ps * rng.lognormal(0.0, spec.sigma, count)
        case "exponential":
            values = rng.exponential(spec.mean_ps, count)
        case "uniform":
            values = rng.uniform(spec.low_ps, spec.high_ps, count)
        case "empirical":
            values = rng.choice(np.array(spec.samples_ps, dtype=float), count)
    return np.rint(np.minimum(values, MAX_DELAY_PS)).astype(np.int64)


def draw_impairments(jitter: DistributionSpec, loss: LossSpec, nbytes: np.ndarray, mtu_bytes: int,
                     rng: np.random.Generator, loss_rate: np.ndarray | None = None) -> TransferImpairments:
    """``loss_rate``: each transfer's packet loss rate when its route adds to ``loss.rate``."""
    count = len(nbytes)
    delays = draw_delays_ps(jitter, count, rng)
    rate = loss.rate if loss_rate is None else loss_rate
    if np.all(rate == 0.0):
        zeros = np.zeros(count, dtype=np.int64)
        return TransferImpairments(delays, zeros, zeros, np.zeros(count, dtype=bool))
    packets = np.maximum(-(-nbytes // mtu_bytes), 1) * (nbytes > 0)
    gap_losses = rng.binomial(np.maximum(packets - 1, 0), rate)
    # losses of the last packet before one gets through: failures before the first success
    tail_losses = np.where(packets > 0, rng.geometric(1.0 - rate, count) - 1, 0)
    failed = tail_losses > loss.retry_count
    return TransferImpairments(delays, gap_losses, np.minimum(tail_losses, loss.retry_count + 1), failed)


def launch_skew_ps(spec: DistributionSpec, schedule: Schedule, rng: np.random.Generator) -> np.ndarray:
    """Per transfer: the later launch delay of its two ranks if it waits on no other transfer, else 0."""
    skew_ps = draw_delays_ps(spec, schedule.ranks, rng)
    transfers = schedule.transfers
    return np.where(transfers.is_root, np.maximum(skew_ps[transfers.src], skew_ps[transfers.dst]), 0).astype(np.int64)


def route_loss_rate(rate: float, link_rates: dict[int, float], links: tuple[int, ...]) -> float:
    """A packet's loss rate along a route: lost anywhere, 1 - (1 - rate) x prod(1 - link rate)."""
    kept = 1.0 - rate
    for link in links:
        kept *= 1.0 - link_rates.get(link, 0.0)
    return 1.0 - kept
