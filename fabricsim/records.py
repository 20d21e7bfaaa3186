"""Records: what a trial leaves behind, a leaf every layer may read.

A ``TrialRecord`` holds a trial's latency, its ``Breakdown`` (ideal time and the ``CAUSES``, in the one
vocabulary the engine attributes and trials.csv's columns name) and what its network model kept, typed
by model: ``FlowModelOutput`` (each link's ``LinkUse``, ``FlowRecord``s) or ``PacketModelOutput``
(``PortCounters``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

# the causes of a trial's time beyond its ideal, from the engine to trials.csv's columns (``<part>_us``)
CAUSES = ("contention", "jitter", "retransmit", "timeout", "failure")
PARTS = ("ideal",) + CAUSES


@dataclass(slots=True)
class Causes:
    """Time (ps) the named causes added: to one transfer, or summed along a critical path."""

    jitter_ps: int = 0
    retransmit_ps: int = 0
    timeout_ps: int = 0
    failure_ps: int = 0

    def add(self, other: Causes) -> None:
        for field in fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))

    def values(self) -> list[int]:
        return [max(0, getattr(self, field.name)) for field in fields(self)]


@dataclass(frozen=True, slots=True)
class Breakdown:
    """Why a trial took its latency: the ideal time and what each cause added, summing to the latency."""

    ideal_ps: int = 0
    contention_ps: int = 0
    jitter_ps: int = 0
    retransmit_ps: int = 0
    timeout_ps: int = 0
    failure_ps: int = 0

    def parts_ps(self) -> list[int]:
        """The parts in PARTS order."""
        return [getattr(self, f"{part}_ps") for part in PARTS]


@dataclass(frozen=True, slots=True)
class PortCounters:
    link: str
    kind: str
    tx_packets: int
    tx_bytes: int
    pause_frames: int
    paused_ps: int
    ecn_marks: int
    cnps: int
    nacks: int
    drops: int
    losses: int
    retransmits: int
    timeouts: int
    queue_p50_bytes: float
    queue_p99_bytes: float
    queue_max_bytes: int


@dataclass(frozen=True, slots=True)
class FlowRecord:
    """One flow of a transfer, for flows.csv; ranks are the collective's."""

    transfer: int
    qp: int  # the flow's index in its transfer: queue pair (x equal-cost route when spraying)
    src: int
    dst: int
    nbytes: int
    links: tuple[int, ...]
    start_ps: int
    sent_ps: int
    stalled_ps: int

    @property
    def rate_Gbps(self) -> float:
        """Its bytes over its time from start to last bit (0 for a flow of no time)."""
        duration_ps = self.sent_ps - self.start_ps
        return self.nbytes * 8 / duration_ps * 1e3 if duration_ps else 0.0


@dataclass(frozen=True, slots=True)
class LinkUse:
    """The flow model's use of each link (by index) in one trial: bits carried, busy time, peak
    concurrent flows."""

    carried_bits: tuple[float, ...]
    busy_ps: tuple[int, ...]
    peak_flows: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class FlowModelOutput:
    """What the flow model keeps of a trial: each link's use, and (``output.flows``) every flow."""

    link_usage: LinkUse
    flows: tuple[FlowRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class PacketModelOutput:
    """What the packet model keeps of a trial: its ports' counters."""

    ports: tuple[PortCounters, ...]


@dataclass(frozen=True, slots=True)
class CriticalPath:
    """A trial's critical path in words and figures: its compute; the time on it per kind of call ("tp
    all_reduce", most first); the group (name and fabric GPUs) with the most time on it over its calls,
    that time, and its call (kind and number) with the most, and that time; of the links the path's
    transfers took, the most loaded in the trial (bits carried over capacity x the trial's time). Empty
    names: no call or link on the path."""

    compute_ps: int
    kinds_ps: tuple[tuple[str, int], ...]
    group: str
    gpus: tuple[int, ...]
    group_ps: int
    call: str
    call_ps: int
    link: str
    link_utilization: float


@dataclass(frozen=True, slots=True)
class TrialRecord:
    """One trial: its sizes, latency and failure, why it took that long, and what its model kept."""

    trial: int
    per_rank_bytes: tuple[int, ...]
    latency_ps: int
    failed: bool
    # why it took latency_ps (fabricsim/engine/breakdown.py): the six parts sum to latency_ps
    breakdown: Breakdown = Breakdown()
    model_output: FlowModelOutput | PacketModelOutput | None = None  # what the trial's model kept
    # the whole job's step: per kind of call ("tp all_reduce", "pp send_recv", ...), each group's call's
    # latency, its last delivery less its first transfer's ready time
    call_latency_ps: dict[str, np.ndarray] | None = None
    # scenario jobs: each job's step time in the shared step, and alone (same fabric, placement and seed)
    job_latency_ps: tuple[int, ...] = ()
    job_alone_ps: tuple[int, ...] = ()
    critical_path: CriticalPath | None = None  # the whole job's step: what held its critical path

    @property
    def ports(self) -> tuple[PortCounters, ...]:
        """The packet model's port counters; none from the flow model."""
        return self.model_output.ports if isinstance(self.model_output, PacketModelOutput) else ()

    @property
    def link_usage(self) -> LinkUse | None:
        """The flow model's use of each link; None from the packet model."""
        return self.model_output.link_usage if isinstance(self.model_output, FlowModelOutput) else None

    @property
    def flows(self) -> tuple[FlowRecord, ...]:
        """The flow model's flows, when ``output.flows`` asks for them."""
        return self.model_output.flows if isinstance(self.model_output, FlowModelOutput) else ()
