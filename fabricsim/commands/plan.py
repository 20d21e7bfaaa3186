"""``fabricsim plan MODEL [--device h100] [--link nvlink4] [--tp 1,2,4,8] [--json] [--plot FILE] [--simulate]``:
price each tensor-parallel degree of a transformer on a device and link, and recommend one.

MODEL is a Hugging Face config.json (or fabricsim transformer keys) or the name of a shipped one in
scenarios/models/ (llama-2-7b, llama-2-70b, llama-3-8b, llama-3.1-405b).
"""

from __future__ import annotations

import argparse
import json
import math
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from fabricsim.commands.common import EXIT_OK, positive_int
from fabricsim.config import ScenarioError, TransformerSpec, load_transformer
from fabricsim.config.devices import DEVICES, LINKS
from fabricsim.planner.memory import gigabytes
from fabricsim.planner.sizing import Recommendation, recommend
from fabricsim.units import format_bytes

if TYPE_CHECKING:
    from fabricsim.planner.tp_cost import TpPlan

SHIPPED_MODELS = Path(__file__).resolve().parents[2] / "scenarios" / "models"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("plan", help="how many tensor-parallel GPUs a model, device and link can use")
    parser.add_argument("model", help="config.json path, or a shipped model name such as llama-2-70b")
    parser.add_argument("--device", choices=sorted(DEVICES), default="h100", help="the GPU")
    parser.add_argument("--link", choices=sorted(LINKS), help="default: the device's own NVLink")
    parser.add_argument("--tp", type=_degrees, default=(1, 2, 4, 8), metavar="1,2,4,8",
                        help="TP degrees to tabulate (default 1,2,4,8)")
    parser.add_argument("--batch-size", type=positive_int, default=1, metavar="N", help="sequences per step")
    parser.add_argument("--seq-len", type=positive_int, default=4096, metavar="N", help="tokens per sequence")
    parser.add_argument("--sparse", action="store_true",
                        help="use the 2:4-sparsity peak (2x dense), as seed 001 does for H100 and H800")
    parser.add_argument("--tflops", type=_positive_float, metavar="T", help="override the device's peak (TFLOPS)")
    parser.add_argument("--simulate", action="store_true", help="simulate the TP calls on a one-host fabric")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--plot", metavar="FILE", help="write time per step vs TP degree as a PNG")
    parser.set_defaults(handler=command_plan)


def command_plan(args: argparse.Namespace) -> int:
    from fabricsim.planner.tp_cost import plan_tp

    if args.plot:
        _check_plot_target(Path(args.plot))
    model = _load_model(args.model)
    device = DEVICES[args.device]
    link = LINKS[args.link or device.link]
    peak_flops = args.tflops * 1e12 if args.tflops else device.peak_flops(sparse=args.sparse)
    plan = plan_tp(model, device, link, args.tp, args.batch_size, args.seq_len, peak_flops)
    recommendation = recommend(model, plan.parameters, args.batch_size, args.seq_len, plan.max_tp, device.memory_bytes)
    simulated = None
    if args.simulate:
        from fabricsim.planner.simulate import simulated_comm_s

        simulated = simulated_comm_s(plan)
    if args.json:
        print(json.dumps(plan_json(plan, recommendation, simulated), indent=2))
    else:
        print(format_plan(plan, recommendation, simulated))
    if args.plot:
        comm_s, label = (simulated, "communication (simulated)") if simulated else (
            tuple(row.comm_s for row in plan.rows), "communication (estimated)")
        from fabricsim.planner.plot import plot_plan

        plot_plan(plan, comm_s, label, args.plot, recommendation.tp)
        print(f"plot: {args.plot}")
    return EXIT_OK


def format_plan(plan: TpPlan, recommendation: Recommendation, simulated: tuple[float, ...] | None) -> str:
    model, link = plan.model, plan.link
    lines = [
        f"{model.name}: {plan.parameters / 1e9:.2f}B parameters, hidden {model.hidden_size}, {model.layers} layers, "
        f"{model.heads} heads / {model.kv_heads} KV heads, {model.dtype}",
        f"{plan.device.name} at {plan.peak_flops / 1e12:.0f} TFLOPS with {gigabytes(plan.device.memory_bytes)}, "
        f"over {link.name} ({link.bidirectional_GBps:g} GB/s both ways, {link.one_way_Bps / 1e9:g} GB/s one way)",
        f"sizing one training step (forward and backward) of batch {plan.batch_size} x {plan.seq_len} tokens, "
        "per GPU of the tensor-parallel group",
        f"the link keeps up while the GPU computes at least peak / one-way bandwidth = "
        f"{plan.needed_flop_per_byte:.0f} FLOP per byte it receives (6 h / (tp B) for Q, K and V), "
        f"so it feeds at most {plan.max_tp:.2f} TP GPUs",
        "",
    ]
    header = ["tp", "heads/GPU", "compute ms", "wire/GPU", "comm ms"]
    header += ["sim comm ms"] if simulated else []
    header += ["comm/compute", "FLOP/B", "link keeps up", "memory/GPU", "fits"]
    table = [header]
    for i, row in enumerate(plan.rows):
        comm_s = simulated[i] if simulated else row.comm_s
        cells = [str(row.tp), str(row.heads_per_gpu), f"{row.compute_s * 1e3:.1f}", format_bytes(row.wire_bytes),
                 f"{row.comm_s * 1e3:.1f}"]
        cells += [f"{simulated[i] * 1e3:.1f}"] if simulated else []
        cells += [f"{comm_s / row.compute_s:.3f}", f"{row.flop_per_byte:.0f}", "yes" if row.keeps_up else "no",
                  gigabytes(row.memory_bytes), "yes" if row.fits else "no"]
        table.append(cells)
    widths = [max(len(r[c]) for r in table) for c in range(len(header))]
    lines += ["  ".join(cell.rjust(width) for cell, width in zip(r, widths)) for r in table]
    split = "split the weights (tensor parallel)" if recommendation.mode == "weight" else \
        "split the batch (data parallel)"
    lines += ["", f"recommended: TP {recommendation.tp}, {split}"]
    lines += [f"  - {reason}" for reason in recommendation.reasons]
    return "\n".join(lines)


def plan_json(plan: TpPlan, recommendation: Recommendation, simulated: tuple[float, ...] | None) -> dict:
    rows = [asdict(row) | ({"simulated_comm_s": simulated[i]} if simulated else {})
            for i, row in enumerate(plan.rows)]
    return {
        "model": plan.model.model_dump(), "parameters": plan.parameters,
        "device": plan.device.name, "peak_flops": plan.peak_flops,
        "link": asdict(plan.link), "batch_size": plan.batch_size, "seq_len": plan.seq_len,
        "needed_flop_per_byte": plan.needed_flop_per_byte, "max_tp": plan.max_tp,
        "rows": rows, "recommendation": asdict(recommendation),
    }


def _load_model(text: str) -> TransformerSpec:
    path = Path(text)
    if not path.exists():
        shipped = SHIPPED_MODELS / f"{text.lower()}.json"
        if not shipped.exists():
            names = ", ".join(sorted(p.stem for p in SHIPPED_MODELS.glob("*.json")))
            raise ScenarioError(f"plan: {text}: expected a config.json path or a shipped model ({names})")
        path = shipped
    return load_transformer(path)


def _check_plot_target(path: Path) -> None:
    """--plot writes a new PNG or replaces one: never a folder or another kind of file."""
    problem = None
    if path.is_dir():
        problem = "a folder"
    elif path.exists():
        with path.open("rb") as handle:
            if handle.read(len(PNG_SIGNATURE)) != PNG_SIGNATURE:
                problem = "an existing file that is not a PNG"
    elif not path.parent.resolve().is_dir():
        problem = f"a path whose folder {path.parent} does not exist"
    elif not os.access(path.parent.resolve(), os.W_OK | os.X_OK):
        problem = f"a path in {path.parent}, which cannot be written"
    if problem:
        raise ScenarioError(f"--plot {path}: expected a new PNG file or one to replace, got {problem}")


def _degrees(text: str) -> tuple[int, ...]:
    try:
        degrees = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 1,2,4,8, got {text!r}") from None
    if not degrees or min(degrees) < 1:
        raise argparse.ArgumentTypeError(f"expected positive TP degrees, got {text!r}")
    return degrees


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return value
