"""The scenario: its sections, its output, its matrix of variants, and the checks that span sections."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import Field, field_validator, model_serializer, model_validator

from fabricsim.config.base import KeyedValueError, Spec
from fabricsim.config.fabric import FabricSpec
from fabricsim.config.collective import MAX_COLLNET_LOCAL_RANKS, MAX_NVLS_ARITY, CollectiveSpec
from fabricsim.config.workload import WorkloadSpec
from fabricsim.config.impairments import ImpairmentsSpec


_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


class OutputSpec(Spec):
    dir: str | None = Field(None, description="default results/<name>")
    plots: bool = True
    flows: bool = Field(False, description="write flows.csv, one row per flow of every trial")
    trace: Literal["slowest"] | list[Annotated[int, Field(ge=0)]] | None = Field(
        None, description="write trace-<trial>.json (Chrome trace events) of the slowest trial or these trials")


class JobSpec(Spec):
    """One job of several on the fabric: a megatron workload on ``hosts`` hosts, placed by ``placement``."""

    name: str | None = Field(None, description="default job<N>")
    hosts: int = Field(ge=1, description="the hosts the job takes (all their GPUs)")
    placement: Literal["packed", "fragmented", "rail_aligned"] = Field(
        "packed", description="packed: consecutive free hosts, jobs in order; fragmented: free hosts drawn at "
                              "random with the scenario's seed, fixed for the run; rail_aligned: consecutive "
                              "free hosts under one leaf, or whole leaves")
    workload: WorkloadSpec


class Scenario(Spec):
    name: str = Field(description="a plain file name (letters, digits, _ . -): results/<name>/")
    seed: int = Field(0, ge=0)
    fabric: FabricSpec = FabricSpec()
    collective: CollectiveSpec = CollectiveSpec()
    workload: WorkloadSpec = Field(description="with jobs: the first job's (give no workload of its own)")
    jobs: list[JobSpec] = Field(default_factory=list, description="several megatron jobs sharing the fabric")
    impairments: ImpairmentsSpec = ImpairmentsSpec()
    output: OutputSpec = OutputSpec()
    matrix: dict[str, list[Any]] = Field(
        default_factory=dict, description="key path -> values; `fabricsim compare` runs each combination")

    @field_validator("name")
    @classmethod
    def _check_name(cls, name: str) -> str:
        if name in (".", "..") or not _PLAIN_NAME.match(name):
            raise ValueError(f"a plain file name such as tp4_ring (letters, digits, _ . -), got {name!r}")
        return name

    @property
    def whole_job_steps(self) -> bool:
        """Whether a trial is the whole job's step, every group at once (megatron's scope job, the flow
        model's default; every job of ``jobs``), rather than calls one at a time."""
        workload = self.workload
        return workload.rule == "megatron" and (workload.scope == "job"
                                                or (workload.scope is None and self.fabric.model == "flow"))

    @property
    def in_network_collectives(self) -> bool:
        """Whether NVLS, NVLSTree and CollNet may run (named, or picked by auto): only on calls run one at a
        time, which place their relays (switches that reduce) call by call; a whole-job step does not."""
        return not self.whole_job_steps and not self.jobs

    @field_validator("matrix")
    @classmethod
    def _check_matrix(cls, matrix: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key_path, values in matrix.items():
            if key_path == "matrix" or not _has_key_path(cls, key_path):
                raise ValueError(f"expected key paths of the scenario such as fabric.nic.bandwidth, got {key_path!r}")
            if not values:
                raise ValueError(f"expected a non-empty list of values for {key_path}")
        return matrix

    @model_validator(mode="before")
    @classmethod
    def _workload_of_jobs(cls, data: Any) -> Any:
        """With jobs, the scenario's workload is the first job's (it gives the run's trial count)."""
        if isinstance(data, dict) and data.get("jobs"):
            if "workload" in data:
                raise KeyedValueError("workload", "expected no workload beside jobs (each job has its own)")
            first = data["jobs"][0]
            if isinstance(first, dict) and "workload" in first:
                data = {**data, "workload": first["workload"]}
        return data

    @model_serializer(mode="wrap")
    def _without_absent_jobs(self, handler: Any) -> dict[str, Any]:
        """jobs only when given (scenarios without them resolve as they always have); with them, no workload."""
        data = handler(self)
        return {key: value for key, value in data.items()
                if not (key == "jobs" and not value) and not (key == "workload" and data.get("jobs"))}

    @model_validator(mode="after")
    def _check_jobs(self) -> Scenario:
        """Jobs run the whole job's step (megatron, flow model) and must fit on the fabric's hosts."""
        free = self.fabric.hosts
        for index, job in enumerate(self.jobs):
            if job.workload.rule != "megatron" or job.workload.scope == "rank0":
                raise KeyedValueError(f"jobs.{index}.workload.rule", "expected rule megatron run as the whole "
                                      f"job's step (scope job), got rule {job.workload.rule}")
            if job.hosts * self.fabric.gpus_per_host < 2:
                raise KeyedValueError(f"jobs.{index}.hosts", "expected a job of 2 GPUs or more (hosts x "
                                      f"gpus_per_host), got {job.hosts * self.fabric.gpus_per_host}")
            if job.hosts > free:
                raise KeyedValueError(f"jobs.{index}.placement", f"expected the jobs to fit on the fabric's "
                                      f"{self.fabric.hosts} hosts: job {index} needs {job.hosts}, {free} left")
            free -= job.hosts
        if self.jobs and self.fabric.model != "flow":
            raise KeyedValueError("jobs", "expected fabric.model flow to run several jobs at once")
        return self

    @model_validator(mode="after")
    def _check_matrix_indices(self) -> Scenario:
        """A matrix key into a list (jobs.1.placement) names one of its items."""
        for key_path in self.matrix:
            if past := _list_lengths(self, key_path):
                where, length, index = past
                raise KeyedValueError("matrix", f"expected in {key_path} an index of the {length} items of "
                                                f"{where} (0 to {length - 1}), got {index}")
        return self

    @model_validator(mode="after")
    def _check_collective(self) -> Scenario:
        """The collective keys the workload uses: megatron names each call's op and group itself."""
        collective, defaults = self.collective, CollectiveSpec()
        if collective.algorithm == "pat" and self.fabric.gpus_per_host > 1:
            raise KeyedValueError("collective.algorithm", "expected pat only with one GPU per host (NCCL runs PAT "
                                                          f"with 1 rank per node), got {self.fabric.gpus_per_host}")
        if collective.algorithm in ("nvls", "nvls_tree"):
            self._check_nvls(collective.algorithm)
        if collective.algorithm in ("collnet_direct", "collnet_chain"):
            self._check_collnet(collective.algorithm)
        if self.workload.rule == "megatron":
            for key in ("op", "root"):
                if getattr(collective, key) != getattr(defaults, key):
                    raise KeyedValueError(f"collective.{key}", f"expected no collective.{key} under workload rule "
                                                               "megatron, which names each call's op and group")
        elif collective.root >= self.fabric.gpus:
            raise KeyedValueError("collective.root", f"expected a rank below the fabric's {self.fabric.gpus} GPUs, "
                                                     f"got {collective.root}")
        return self

    def _check_nvls(self, algorithm: str) -> None:
        """NVLS and NVLSTree need NVSwitches that reduce (H100 and later presets) and 2 GPUs or more per
        host, NVLS one host (or an all-reduce across hosts with SHARP switches) and NVLSTree several, one
        call at a time."""
        fabric = self.fabric
        if fabric.intra_host != "nvlink" or fabric.nvswitch.nvls_bandwidth_bps is None:
            raise KeyedValueError("collective.algorithm", f"expected {algorithm} only on NVSwitches that reduce "
                                                          "(fabric.nvswitch.nvls_bandwidth, as presets dgx_h100 and "
                                                          "later set), got none")
        if algorithm == "nvls" and self.collective.op != "all_reduce" and fabric.gpus_per_host > MAX_NVLS_ARITY:
            raise KeyedValueError("collective.algorithm", f"expected nvls {self.collective.op} with at most "
                                                          f"{MAX_NVLS_ARITY} GPUs per host (as NCCL), got "
                                                          f"{fabric.gpus_per_host}")
        one_host = algorithm == "nvls"
        with_sharp = (self.collective.op == "all_reduce" and fabric.clos.sharp and fabric.topology != "direct_ring")
        if (fabric.hosts > 1 and one_host and not with_sharp) or (fabric.hosts == 1 and not one_host) \
                or fabric.gpus_per_host < 2:
            where = ("on one host of 2 GPUs or more, or for all_reduce across hosts where switches reduce in the "
                     "network (fabric.clos.sharp: true, as NCCL runs NVLS with CollNet; else NVLSTree)" if one_host
                     else "across hosts of 2 GPUs or more (on one host NCCL runs NVLS)")
            raise KeyedValueError("collective.algorithm", f"expected {algorithm} {where}, got {fabric.hosts} "
                                                          f"host(s) x {fabric.gpus_per_host} GPU")
        self._check_one_call_at_a_time(algorithm)

    def _check_collnet(self, algorithm: str) -> None:
        """CollNet needs switches that reduce (SHARP) above the NICs (every switch of a Clos: its
        aggregation tree runs over leaves and spines), 2 hosts or more, and CollNetDirect NVSwitches;
        one call at a time."""
        fabric, clos = self.fabric, self.fabric.clos
        if not clos.sharp:
            raise KeyedValueError("collective.algorithm", f"expected {algorithm} only where switches reduce in the "
                                                          "network (fabric.clos.sharp: true), got false")
        if fabric.topology == "direct_ring":
            raise KeyedValueError("collective.algorithm", f"expected {algorithm} where the NICs are cabled to "
                                                          "switches (single_switch, leaf_spine, rail_optimized), got "
                                                          "direct_ring")
        if fabric.gpus_per_host > MAX_COLLNET_LOCAL_RANKS:
            raise KeyedValueError("collective.algorithm", f"expected {algorithm} with at most "
                                                          f"{MAX_COLLNET_LOCAL_RANKS} GPUs per host (as NCCL), got "
                                                          f"{fabric.gpus_per_host}")
        if fabric.hosts < 2 or (algorithm == "collnet_direct" and fabric.intra_host != "nvlink"):
            raise KeyedValueError("collective.algorithm", f"expected {algorithm} across 2 hosts or more"
                                  + (" of NVSwitches" if algorithm == "collnet_direct" else "") + f", got "
                                  f"{fabric.hosts} host(s), {fabric.intra_host} inside")
        self._check_one_call_at_a_time(algorithm)

    def _check_one_call_at_a_time(self, algorithm: str) -> None:
        if not self.in_network_collectives:
            raise KeyedValueError("collective.algorithm", f"expected {algorithm} on calls run one at a time "
                                                          "(workload.scope rank0, no jobs): a whole-job step does "
                                                          "not run it")

    @model_validator(mode="after")
    def _check_packet_model(self) -> Scenario:
        """fabric.model packet runs the collective alone on its routes: refuse what it would ignore."""
        if self.fabric.model != "packet":
            return self
        impairments = self.impairments
        ignored = [key for key, used in (
            ("impairments.background", impairments.background.load > 0),
            ("impairments.failures", bool(impairments.failures)),
            ("impairments.launch_skew", impairments.launch_skew.distribution != "none"),
            ("workload.scope", self.workload.scope == "job"),
            ("output.trace", self.output.trace is not None)) if used]
        if ignored:
            raise KeyedValueError(ignored[0], "expected fabric.model flow to use it (the packet model does not play it)")
        return self

    def resolved(self) -> dict[str, Any]:
        """Every key with its value in base units; loading this dict gives the same scenario back."""
        return self.model_dump(mode="json", by_alias=True)


def _has_key_path(spec: type[Spec], key_path: str) -> bool:
    """True when a dotted key path (YAML names, as in --set) names a key of the schema; an item of a
    list of mappings by its index (jobs.1.placement)."""
    head, _, rest = key_path.partition(".")
    for name, field in spec.model_fields.items():
        if head in (name, field.alias):
            items = _item_specs(field.annotation)
            if items and rest:
                index, _, rest = rest.partition(".")
                if not index.isdecimal():
                    return False
                return not rest or any(_has_key_path(sub, rest) for sub in items)
            return not rest or any(_has_key_path(sub, rest) for sub in _nested_specs(field.annotation))
    return False


def _item_specs(annotation: Any) -> list[type[Spec]]:
    """The mappings of keys the items of a list field hold (none: not a list of them)."""
    if get_origin(annotation) in (tuple, list):
        return [spec for arg in get_args(annotation) for spec in _nested_specs(arg)]
    return []


def _list_lengths(model: Spec, key_path: str) -> tuple[str, int, int] | None:
    """The first list on ``key_path`` (a valid one) whose index runs past its end: (its key path, its
    length, the index), or None."""
    node, keys = model, key_path.split(".")
    for depth, key in enumerate(keys):
        if isinstance(node, (list, tuple)):
            if int(key) >= len(node):
                return ".".join(keys[:depth]), len(node), int(key)
            node = node[int(key)]
        elif isinstance(node, Spec):
            node = getattr(node, next(name for name, field in type(node).model_fields.items()
                                      if key in (name, field.alias)))
        else:
            return None
    return None


def _nested_specs(annotation: Any) -> list[type[Spec]]:
    """The mappings of keys a field may hold: its Spec type, or those in its union; not list items."""
    if isinstance(annotation, type) and issubclass(annotation, Spec):
        return [annotation]
    if get_origin(annotation) in (tuple, list):
        return []
    return [spec for arg in get_args(annotation) for spec in _nested_specs(arg)]
