"""The fabric section: topology, hosts, NICs, switches, links, presets, and the packet model's
queues, ECN, PFC and DCQCN settings."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from fabricsim.config.base import Bytes, KeyedValueError, LinkLatencyPs, RateBps, Spec, TimePs
from fabricsim.config.infragraph_document import InfraGraphError, shape
from fabricsim.config.presets import HOST_PRESETS, NIC_PRESETS, with_preset


class LinkSpec(Spec):
    bandwidth_bps: RateBps = Field(alias="bandwidth")
    latency_ps: LinkLatencyPs = Field(alias="latency")


class NicSpec(Spec):
    """A NIC: ``preset`` (a name, or ``nic: roce_400g``) fills the keys not given (config/presets.py)."""

    preset: Literal["roce_100g", "roce_200g", "roce_400g", "roce_800g"] | None = None
    bandwidth_bps: RateBps = Field(100e9, alias="bandwidth", description="line rate")
    latency_ps: LinkLatencyPs = Field(1_000_000, alias="latency", description="NIC processing, per traversal")
    mtu_bytes: Bytes = Field(4096, alias="mtu", gt=0)
    header_bytes: Bytes = Field(0, alias="header", ge=0, description="wire bytes added to each MTU packet")

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        return with_preset({"preset": data} if isinstance(data, str) else data, NIC_PRESETS)

    @property
    def effective_bandwidth_bps(self) -> float:
        """The payload rate: line rate x MTU / (MTU + per-packet header bytes)."""
        return self.bandwidth_bps / (1 + self.header_bytes / self.mtu_bytes)


class SwitchSpec(Spec):
    latency_ps: LinkLatencyPs = Field(600_000, alias="latency", description="port-to-port, per hop")


class NvSwitchSpec(SwitchSpec):
    """An NVSwitch; ``nvls_bandwidth`` is its in-switch reduction and multicast (NVLink SHARP, H100 and
    later) per GPU port: the rate at which NCCL's NVLS moves one GPU's share through it."""

    nvls_bandwidth_bps: RateBps | None = Field(None, alias="nvls_bandwidth",
                                               description="in-switch reduction per GPU port (NVLS); none: no NVLS")

    omitted_when_none = frozenset({"nvls_bandwidth"})


class EcnSpec(Spec):
    """RED marking of switch egress queues; thresholds are stated at 25 Gb/s and scale with the port's
    line rate. Kmin 100 KB, Kmax 400 KB, Pmax 0.2: HPCC simulator config (reference/formulas.md)."""

    enabled: bool = True
    kmin_bytes: Bytes = Field(100_000, alias="kmin", ge=0)
    kmax_bytes: Bytes = Field(400_000, alias="kmax", gt=0)
    pmax: float = Field(0.2, gt=0, le=1)

    @model_validator(mode="after")
    def _check_thresholds(self) -> EcnSpec:
        if self.kmax_bytes <= self.kmin_bytes:
            raise ValueError("kmax above kmin")
        return self


class DcqcnSpec(Spec):
    """The DCQCN reaction point at the sending NIC; increase steps are stated at 25 Gb/s and scale with
    line rate. HPCC simulator config (reference/formulas.md): alpha interval 1 us, decrease interval
    4 us, increase timer 300 us, g = 1/256, steps 5 and 50 Mb/s, minimum rate 100 Mb/s; fast recovery
    F = 5 steps (Zhu et al., SIGCOMM 2015)."""

    enabled: bool = True
    g: float = Field(1 / 256, gt=0, le=1, description="alpha EWMA gain")
    alpha_resume_interval_ps: TimePs = Field(1_000_000, alias="alpha_resume_interval", gt=0)
    rate_decrease_interval_ps: TimePs = Field(4_000_000, alias="rate_decrease_interval", gt=0)
    rate_increase_timer_ps: TimePs = Field(300_000_000, alias="rate_increase_timer", gt=0)
    fast_recovery_steps: int = Field(5, ge=0)
    additive_increase_bps: RateBps = Field(5e6, alias="additive_increase")
    hyper_increase_bps: RateBps = Field(50e6, alias="hyper_increase")
    min_rate_bps: RateBps = Field(100e6, alias="min_rate")


class PfcSpec(Spec):
    """Per-ingress PFC on switches: pause the upstream port when the bytes held from it pass xoff,
    resume at xoff - resume_offset; headroom above xoff is sized per port, 2 x rate x delay + 2 MTU
    (reference/formulas.md). xoff (our choice) sits well above the 100G Kmin so that ECN acts first,
    as DCQCN requires (Zhu et al. 2015); resume_offset (our choice) is two 4 KiB packets."""

    enabled: bool = True
    xoff_bytes: Bytes = Field(1_000_000, alias="xoff", gt=0)
    resume_offset_bytes: Bytes = Field(8192, alias="resume_offset", ge=0)


class PacketSpec(Spec):
    """The packet-level RoCE model (fabric.model: packet)."""

    # 32 MB: the top of the 12-32 MB range of the HPCC simulator config (reference/formulas.md)
    buffer_bytes: Bytes = Field(32_000_000, alias="buffer", gt=0, description="shared by a switch's ports")
    ecn: EcnSpec = EcnSpec()
    dcqcn: DcqcnSpec = DcqcnSpec()
    pfc: PfcSpec = PfcSpec()


def _ratio(value: Any) -> Any:
    """'3:1' -> 3.0 (YAML 1.1 would have read 3:1 as the base-60 number 181); other values pass through."""
    if isinstance(value, str) and ":" in value:
        over, _, under = value.partition(":")
        try:
            return float(over) / float(under)
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"a ratio such as 2 or 2:1, got {value!r}") from None
    return value


class ClosSpec(Spec):
    """The switch tiers above the NICs: leaves (or rail switches) joined by spines."""

    hosts_per_leaf: int = Field(4, ge=1, description="leaf_spine: hosts cabled to each leaf")
    spines: int = Field(2, ge=1)
    oversubscription: Annotated[float, BeforeValidator(_ratio)] = Field(
        1.0, gt=0, le=1000, description="a leaf's downlink over uplink capacity: 2 or 2:1")
    ecmp: Literal["hash", "spray", "adaptive"] = Field(
        "hash", description="per-flow 5-tuple hash, per-packet spraying, or least-loaded next hop")
    sharp: bool = Field(False, description="switches reduce in the network (SHARP): NCCL's CollNet")


class FabricSpec(Spec):
    preset: Literal["dgx_a100", "dgx_h100", "dgx_b200", "dgx_b300", "gb200_nvl72", "pcie_8gpu"] | None = Field(
        None, description="a server model that fills the keys not given (config/presets.py)")
    topology: Literal["single_switch", "direct_ring", "leaf_spine", "rail_optimized"] = "single_switch"
    hosts: int = Field(4, ge=1)
    gpus_per_host: int = Field(1, ge=1)
    intra_host: Literal["nvlink", "pcie"] = "nvlink"
    architecture: Literal["volta", "ampere", "hopper", "blackwell"] = Field(
        "ampere", description="GPU generation: NCCL's tuning constants for algorithm auto")
    pcie_switches: int = Field(0, ge=0, description="per host; 0: each NIC cabled straight to its GPU")
    placement: Literal["host_first", "rail_first"] = Field(
        "host_first", description="rank order: all GPUs of a host, or GPU i of every host, first")
    clos: ClosSpec = ClosSpec()
    qps_per_rankpair: int = Field(1, ge=1, description="flows (queue pairs) each transfer is split over")
    cable_latency_ps: LinkLatencyPs = Field(10_000, alias="cable_latency")
    nic: NicSpec = NicSpec()
    switch: SwitchSpec = SwitchSpec()
    # NVLink3 through NVSwitch: 300 GB/s per GPU per direction (NVIDIA A100 datasheet).
    nvlink: LinkSpec = LinkSpec(bandwidth="300GB/s", latency="100ns")
    nvswitch: NvSwitchSpec = NvSwitchSpec(latency="100ns")
    # PCIe Gen4 x16: 32 GB/s per direction raw (PCI-SIG); the GPU-NIC path and PCIe-only hosts.
    pcie: LinkSpec = LinkSpec(bandwidth="32GB/s", latency="250ns")
    model: Literal["flow", "packet"] = Field("flow", description="max-min flows, or RoCE packets on queues")
    packet: PacketSpec = Field(PacketSpec(), description="used by model: packet")
    infragraph: dict[str, Any] | None = Field(
        None, description="an InfraGraph Infrastructure (in YAML: its file) instead of topology (fabric/infragraph.py)")
    infragraph_annotations: dict[str, Any] | None = Field(
        None, description="an InfraGraph Annotation (in YAML: its file): rank of each xpu node")

    @property
    def gpus(self) -> int:
        return self.hosts * self.gpus_per_host

    omitted_when_none = frozenset({"infragraph", "infragraph_annotations"})

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        return with_preset(data, HOST_PRESETS)

    @model_validator(mode="before")
    @classmethod
    def _infragraph_shape(cls, data: Any) -> Any:
        """hosts and gpus_per_host of an InfraGraph fabric are its own."""
        if not isinstance(data, dict) or not isinstance(data.get("infragraph"), dict):
            return data
        try:
            hosts, gpus_per_host = shape(data["infragraph"])
        except InfraGraphError as error:
            raise KeyedValueError("infragraph", str(error)) from None
        for key, value in (("hosts", hosts), ("gpus_per_host", gpus_per_host)):
            if data.get(key, value) != value:
                raise KeyedValueError(key, f"expected {value} as in the InfraGraph fabric, or no {key}")
        return {**data, "hosts": hosts, "gpus_per_host": gpus_per_host}

    @model_validator(mode="after")
    def _check_shape(self) -> FabricSpec:
        if self.pcie_switches and self.gpus_per_host % self.pcie_switches:
            raise ValueError("pcie_switches that divide gpus_per_host")
        if self.topology == "leaf_spine" and self.hosts % self.clos.hosts_per_leaf:
            raise ValueError("hosts a multiple of clos.hosts_per_leaf")
        if self.gpus < 2:
            raise ValueError("at least 2 GPUs in all (hosts x gpus_per_host)")
        if self.topology == "direct_ring" and self.hosts < 2:
            raise ValueError("a direct ring needs at least 2 hosts")
        return self
