"""The ``megatron`` rule: one training step of a transformer under TP x PP x DP, seen from global rank 0.

Each call names its stream (``tp``, ``pp``, ``dp``) and whether it blocks the compute after it; DDP's
buckets and FSDP's calls do not. Rank 0's micro-batches run in GPipe order (every forward, then every
backward); in the whole job's step each pipeline stage runs its own program in 1F1B order
(``megatron_stages``), with ``virtual_stages`` over its model chunks in Megatron's interleaved order. With
b = micro-batch size, s = sequence length, h = hidden size and B = bytes per element:
- tensor parallel (Shoeybi et al. 2019, Megatron-LM): per layer and micro-batch, an all-reduce of
  b·s·h·B after the attention block and one after the MLP, forward, and the same two backward, in the
  TP group. With sequence parallel (Korthikanti et al. 2022) each becomes an all-gather (b·s·h·B / tp
  per rank) before the block and a reduce-scatter (b·s·h·B input) after it;
- pipeline: per micro-batch, stage 0 sends its activation (b·s·h·B, / tp with sequence parallel) to
  stage 1 and receives the gradient of the same size back;
- data parallel, ddp: the stage's gradients (rank 0's TP shard) all-reduced in buckets, last layer
  first; a bucket closes once it holds at least ``bucket`` bytes (PyTorch DDP, 25 MiB by default) and
  is all-reduced as soon as the backward pass of the last micro-batch has produced its gradients (a
  layer's after its backward, the head's after its own, the embedding's at the end), without blocking
  the compute (in the whole job's step, it overlaps the rest of backward);
- data parallel, fsdp (ZeRO-3): per unit (each layer; the embedding and LM head together) and
  micro-batch, an all-gather of its parameter shards before its forward and again before its backward,
  and a reduce-scatter of its gradients after its backward (shards padded to equal size), as PyTorch
  FSDP runs them: the next unit's all-gather is issued as a unit's compute starts (prefetched, in
  forward and backward), a unit's compute waits for its own all-gather only (``Call.waits``), and the
  reduce-scatters do not block the compute; all on the DP stream, in that order;
- compute, with a device: forward FLOPs / (tp x its dense peak) before the next call, backward twice that.
"""

from __future__ import annotations

from fabricsim.config import DTYPE_BYTES, ScenarioError, WorkloadSpec
from fabricsim.models.transformer import (ParamTensor, attention_forward_flops, embedding_tensors,
                                          head_forward_flops, head_tensors, layer_tensors, mlp_forward_flops,
                                          tp_degree_problem)
from fabricsim.units import PS_PER_S
from fabricsim.workload.job import interleaved_one_f_one_b, one_f_one_b
from fabricsim.workload.placement import Mesh
from fabricsim.workload.trial import Call, batch_count

BACKWARD_FLOPS_FACTOR = 2


class _StepBuilder:
    """Collects calls in order, charging the compute accumulated since the previous call to the next;
    fills DDP's gradient buckets as backward produces the gradients."""

    def __init__(self, peak_flops: float | None, tp: int, element_bytes: int, bucket_bytes: int) -> None:
        self.calls: list[Call] = []
        self.pending_flops = 0
        self._waits: list[tuple[int, int]] = []  # (ps into the pending compute, position of the call it waits for)
        self._peak_flops = peak_flops
        self._tp, self._element_bytes, self._bucket_bytes = tp, element_bytes, bucket_bytes
        self._filled = 0

    def compute(self, flops: float) -> None:
        self.pending_flops += flops

    def call(self, op: str, group: tuple[int, ...], per_rank_bytes: int, stream: str,
             blocking: bool = True) -> int | None:
        """The call, after the compute so far; its position (None: a group of one rank, no call)."""
        if len(group) == 1:
            return None
        waits, self._waits = tuple(self._waits), []
        self.calls.append(Call(op, group, per_rank_bytes, self.take_compute_ps(), stream, blocking, waits))
        return len(self.calls) - 1

    def wait_for(self, position: int | None) -> None:
        """The compute from here on waits for the call at ``position`` (None: nothing)."""
        if position is not None:
            self._waits.append((self._ps(self.pending_flops), position))

    def gradients(self, tensors: tuple[ParamTensor, ...], dp_group: tuple[int, ...]) -> None:
        """``tensors``' gradients are ready: into the bucket, last tensor first (``gradient_buckets``); a
        full bucket is all-reduced at once, without blocking the compute."""
        full, self._filled = _fill_buckets(self._filled, tensors, self._tp, self._element_bytes, self._bucket_bytes)
        for nbytes in full:
            self.call("all_reduce", dp_group, nbytes, "dp", blocking=False)

    def flush(self, dp_group: tuple[int, ...]) -> None:
        """The last bucket, however full, at the end of backward."""
        full, self._filled = (self._filled,) if self._filled else (), 0
        for nbytes in full:
            self.call("all_reduce", dp_group, nbytes, "dp", blocking=False)

    def take_compute_ps(self) -> int:
        compute_ps = self._ps(self.pending_flops)
        self.pending_flops = 0
        return compute_ps

    def _ps(self, flops: float) -> int:
        return round(flops / self._peak_flops * PS_PER_S) if self._peak_flops else 0


def megatron_mesh(workload: WorkloadSpec, gpus: int, source: str) -> Mesh:
    """The TP x DP x PP mesh of the workload, checked against the model and the fabric's GPU count."""
    model, parallelism = workload.transformer, workload.parallelism
    tp, pp = parallelism.tp or 1, parallelism.pp
    where = f"{source}: workload.parallelism"
    if problem := tp_degree_problem(model, tp):
        raise ScenarioError(f"{where}.tp: {problem}")
    if model.layers % pp:
        raise ScenarioError(f"{where}.pp: expected a degree dividing the {model.layers} layers, got {pp}")
    dp = parallelism.dp or max(1, gpus // (tp * pp))
    if tp * pp * dp != gpus:
        raise ScenarioError(f"{where}: expected tp x pp x dp = the fabric's {gpus} GPUs, got {tp} x {pp} x {dp}")
    if parallelism.sequence_parallel and seq_len_of(workload) % tp:
        raise ScenarioError(f"{source}: workload.seq_len: expected a length dividing by tp {tp} "
                            f"(sequence parallel), got {seq_len_of(workload)}")
    if (chunks := parallelism.virtual_stages or 1) > 1:
        if problem := virtual_stages_problem(model.layers, pp, parallelism.micro_batches, chunks,
                                             parallelism.dp_mode):
            raise ScenarioError(f"{where}.virtual_stages: {problem}")
    return Mesh(tp, dp, pp)


def virtual_stages_problem(layers: int, pp: int, micro_batches: int, chunks: int, dp_mode: str) -> str | None:
    """What Megatron's interleaved schedule needs and ``chunks`` model chunks per stage lack, or None."""
    if pp <= 2:
        return f"expected pp above 2 for an interleaved pipeline (as Megatron-LM), got pp {pp}"
    if layers % (pp * chunks):
        return f"expected pp x virtual_stages dividing the {layers} layers, got {pp} x {chunks}"
    if micro_batches % pp:
        return f"expected micro_batches a multiple of pp {pp} (as Megatron-LM's interleaving), got {micro_batches}"
    if dp_mode != "ddp":
        return "expected dp_mode ddp with an interleaved pipeline"
    return None


def megatron_trial_count(workload: WorkloadSpec, mesh: Mesh) -> int:
    """batch_count x epochs; a step takes batch_size x micro_batches sequences on each DP replica."""
    if workload.trials:
        return workload.trials
    samples = workload.dataset_samples or workload.dataset_tokens // seq_len_of(workload)
    global_batch = workload.batch_size * workload.parallelism.micro_batches * mesh.dp
    return batch_count(samples, global_batch) * workload.epochs


def megatron_step(workload: WorkloadSpec, mesh: Mesh,
                  peak_flops: float | None = None) -> tuple[tuple[Call, ...], int]:
    """Rank 0's calls over one step (micro-batches in GPipe order), and the compute time left after the
    last of them (at ``peak_flops`` per GPU; none without)."""
    micro_batches, chunks = workload.parallelism.micro_batches, workload.parallelism.virtual_stages or 1
    gpipe = (*((True, k, c) for c in range(chunks) for k in range(micro_batches)),
             *((False, k, c) for c in reversed(range(chunks)) for k in range(micro_batches)))
    return stage_program(workload, mesh, peak_flops, 0, gpipe)


def megatron_stages(workload: WorkloadSpec, mesh: Mesh,
                    peak_flops: float | None = None) -> tuple[tuple[tuple[Call, ...], int], ...]:
    """Each pipeline stage's program (its first GPU's calls, 1F1B order, interleaved with virtual stages,
    and the compute after them)."""
    micro_batches, chunks = workload.parallelism.micro_batches, workload.parallelism.virtual_stages or 1
    return tuple(stage_program(workload, mesh, peak_flops, stage,
                               interleaved_one_f_one_b(mesh.pp, stage, micro_batches, chunks) if chunks > 1 else
                               tuple((forward, k, 0) for forward, k in one_f_one_b(mesh.pp, stage, micro_batches)))
                 for stage in range(mesh.pp))


def stage_program(workload: WorkloadSpec, mesh: Mesh, peak_flops: float | None, stage: int,
                  passes: tuple[tuple[bool, int, int], ...]) -> tuple[tuple[Call, ...], int]:
    """The calls of ``stage``'s first GPU over ``passes`` ((forward?, micro-batch, model chunk) each, in
    order), and the compute time left after the last of them."""
    model, parallelism = workload.transformer, workload.parallelism
    seq_len, tp = seq_len_of(workload), mesh.tp
    tokens = workload.batch_size * seq_len
    element_bytes = DTYPE_BYTES[model.dtype]
    step = _StepBuilder(peak_flops, tp, element_bytes, parallelism.bucket_bytes)
    activation_bytes = tokens * model.hidden_size * element_bytes
    tp_group, dp_group = mesh.tp_group(0, stage), mesh.dp_group(0, stage)
    me, stages = mesh.rank(0, 0, stage), mesh.pp_group()
    chunks = parallelism.virtual_stages or 1
    layers = model.layers // (mesh.pp * chunks)  # of each model chunk
    stage_tensors = (*(embedding_tensors(model) if stage == 0 else ()), *layer_tensors(model) * layers * chunks,
                     *(head_tensors(model) if stage == mesh.pp - 1 else ()))
    layer_bytes = _shard_bytes(layer_tensors(model), tp, element_bytes)
    root_bytes = _shard_bytes(stage_tensors, tp, element_bytes) - layers * chunks * layer_bytes  # embedding, head
    fsdp = parallelism.dp_mode == "fsdp"
    blocks = (attention_forward_flops(model, tokens, seq_len) / tp, mlp_forward_flops(model, tokens) / tp)

    def tp_block(flops: float) -> None:
        if parallelism.sequence_parallel:
            step.call("all_gather", tp_group, activation_bytes // tp, "tp")
            step.compute(flops)
            step.call("reduce_scatter", tp_group, activation_bytes, "tp")
        else:
            step.compute(flops)
            step.call("all_reduce", tp_group, activation_bytes, "tp")

    def fsdp_unit(op: str, unit_bytes: int) -> int | None:
        """An FSDP unit's all-gather of parameters or reduce-scatter of gradients (sharded, padded), not
        blocking the compute; its position (None: none)."""
        if fsdp and unit_bytes:
            shard_bytes = -(-unit_bytes // mesh.dp)
            return step.call(op, dp_group, shard_bytes if op == "all_gather" else shard_bytes * mesh.dp, "dp",
                             blocking=False)
        return None

    def units(forward: bool):
        """The pass's units in order, the root first (``None``), then the layers: each unit's compute
        waits for its all-gather, and the next unit's is prefetched as it starts (PyTorch FSDP's
        forward and BACKWARD_PRE prefetch)."""
        gathered = fsdp_unit("all_gather", root_bytes)
        for unit in range(layers + 1):
            step.wait_for(gathered)
            gathered = fsdp_unit("all_gather", layer_bytes) if unit < layers else None
            yield None if unit == 0 else unit - 1 if forward else layers - unit

    pipeline_bytes = activation_bytes // tp if parallelism.sequence_parallel else activation_bytes
    for forward, micro_batch, chunk in passes:
        # chunk c of stage s follows chunk c of stage s - 1 (stage 0's, chunk c - 1 of the last stage)
        virtual_stage = chunk * mesh.pp + stage
        first_stage, last_stage = virtual_stage == 0, virtual_stage == mesh.pp * chunks - 1
        previous_stage = () if first_stage else (stages[(stage - 1) % mesh.pp],)
        next_stage = () if last_stage else (stages[(stage + 1) % mesh.pp],)
        if forward:
            if previous_stage:
                step.call("send_recv", (*previous_stage, me), pipeline_bytes, "pp")
            for layer in units(forward):
                if layer is not None:
                    for flops in blocks:
                        tp_block(flops)
            if last_stage:
                step.compute(head_forward_flops(model, tokens) / tp)
            else:
                step.call("send_recv", (me, *next_stage), pipeline_bytes, "pp")
            continue
        ddp = not fsdp and micro_batch == parallelism.micro_batches - 1  # the chunk's gradients, in its last
        for layer in units(forward):
            if layer is None and last_stage:
                step.compute(BACKWARD_FLOPS_FACTOR * head_forward_flops(model, tokens) / tp)
                if ddp:
                    step.gradients(head_tensors(model), dp_group)
            elif layer is None:
                step.call("send_recv", (*next_stage, me), pipeline_bytes, "pp")
            else:
                for flops in reversed(blocks):
                    tp_block(BACKWARD_FLOPS_FACTOR * flops)
                fsdp_unit("reduce_scatter", layer_bytes)
                if ddp:
                    step.gradients(layer_tensors(model), dp_group)
        fsdp_unit("reduce_scatter", root_bytes)
        if previous_stage:
            step.call("send_recv", (me, *previous_stage), pipeline_bytes, "pp")
        if ddp:
            if first_stage:
                step.gradients(embedding_tensors(model), dp_group)
            step.flush(dp_group)
    return tuple(step.calls), step.take_compute_ps()


def gradient_buckets(tensors: tuple[ParamTensor, ...], tp: int, element_bytes: int,
                     bucket_bytes: int) -> tuple[int, ...]:
    """DDP's buckets over the gradients in backward order (last tensor first): bytes of each bucket."""
    buckets, filled = _fill_buckets(0, tensors, tp, element_bytes, bucket_bytes)
    return (*buckets, filled) if filled else buckets


def _fill_buckets(filled: int, tensors: tuple[ParamTensor, ...], tp: int, element_bytes: int,
                  bucket_bytes: int) -> tuple[tuple[int, ...], int]:
    """``tensors``' gradient shards into a bucket holding ``filled`` bytes, last tensor first: the
    buckets that reached ``bucket_bytes`` (bytes of each) and the bytes left in the open one."""
    full = []
    for tensor in reversed(tensors):
        filled += _shard_bytes((tensor,), tp, element_bytes)
        if filled >= bucket_bytes:
            full.append(filled)
            filled = 0
    return tuple(full), filled


def _shard_bytes(tensors: tuple[ParamTensor, ...], tp: int, element_bytes: int) -> int:
    """Bytes of one TP rank's share of ``tensors``: split ones divided (rounded up), the others whole."""
    return element_bytes * sum(-(-t.numel // tp) if t.tp_split else t.numel for t in tensors)


def seq_len_of(workload: WorkloadSpec) -> int:
    return workload.seq_len or workload.transformer.max_seq_len

