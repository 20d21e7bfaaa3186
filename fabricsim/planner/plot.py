"""The plan's picture: time per step against the TP degree, compute and communication stacked.

Bars whose TP degree the link cannot feed (seed 001) are hatched; the recommended degree is marked.
Like ``fabricsim.output.plots``, it builds a Figure without pyplot under matplotlib's default style and writes
one PNG.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.style
import numpy as np

from fabricsim.output.plots import new_figure, save_figure
from fabricsim.planner.tp_cost import TpPlan


def plot_plan(plan: TpPlan, comm_s: tuple[float, ...], comm_label: str, path: str | Path,
              recommended_tp: int | None = None) -> None:
    """Stacked bars per TP degree: compute and ``comm_s`` (estimated or simulated), in milliseconds,
    with ``recommended_tp`` marked when it is among them."""
    x = np.arange(len(plan.rows))
    compute_ms = np.array([row.compute_s for row in plan.rows]) * 1e3
    comm_ms = np.array(comm_s) * 1e3
    hatches = ["" if row.keeps_up else "//" for row in plan.rows]
    with matplotlib.style.context("default"):
        fig = new_figure(f"{plan.model.name}: time per training step vs TP degree",
                         f"{plan.device.name} ({plan.peak_flops / 1e12:.0f} TFLOPS) over {plan.link.name} "
                         f"({plan.link.bidirectional_GBps:g} GB/s); batch {plan.batch_size} x {plan.seq_len}\n"
                         f"the link feeds at most {plan.max_tp:.1f} TP GPUs (hatched: it cannot)")
        ax = fig.add_subplot()
        ax.bar(x, compute_ms, color="tab:blue", label="compute", hatch=hatches)
        ax.bar(x, comm_ms, bottom=compute_ms, color="tab:orange", label=comm_label, hatch=hatches)
        ax.set_xticks(x, [str(row.tp) for row in plan.rows])
        for index, row in enumerate(plan.rows):
            if row.tp == recommended_tp:
                ax.annotate("recommended", (index, compute_ms[index] + comm_ms[index]), xytext=(0, 4),
                            textcoords="offset points", ha="center", fontsize=9, fontweight="bold")
                ax.get_xticklabels()[index].set_fontweight("bold")
        ax.set_xlabel("TP degree")
        ax.set_ylabel("time per step per GPU (ms)")
        ax.grid(True, axis="y", alpha=0.4)
        ax.set_ylim(0, 1.2 * float(np.max(compute_ms + comm_ms)))  # room for the legend above the bars
        ax.legend(loc="upper right", fontsize=9)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        save_figure(fig, path)
