"""The picture of a sweep: bus bandwidth and time against size, one line per algorithm.

Like ``fabricsim.output.plots``: numbers in, one PNG out, a Figure built without pyplot under matplotlib's
default style. Size is on a log2 axis (sweeps multiply it), time on a log axis (it spans decades from
the latency-bound to the bandwidth-bound end).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.style
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from fabricsim.output.plots import DPI, save_figure
from fabricsim.units import format_bytes

FIGURE_SIZE_IN = (12, 5)


def plot_sweep(series: dict[str, tuple[list[int], list[float], list[float]]], path: Path, title: str,
               subtitle: str, measured: tuple[str, tuple[list[int], list[float], list[float]]] | None = None) -> None:
    """``series`` maps a line's label to (sizes in bytes, times in us, busbw in GB/s); ``measured``, a
    label and the same three lists, is drawn over them as black crosses."""
    with matplotlib.style.context("default"):
        fig = Figure(figsize=FIGURE_SIZE_IN, dpi=DPI, layout="constrained")
        fig.suptitle(f"{title}\n{subtitle}", fontsize=12)
        busbw_ax, time_ax = fig.subplots(1, 2)
        for label, (sizes_bytes, times_us, busbw_GBps) in series.items():
            busbw_ax.plot(sizes_bytes, busbw_GBps, marker="o", markersize=3, label=label)
            time_ax.plot(sizes_bytes, times_us, marker="o", markersize=3, label=label)
        if measured is not None:
            label, (sizes_bytes, times_us, busbw_GBps) = measured
            for ax, values in ((busbw_ax, busbw_GBps), (time_ax, times_us)):
                ax.plot(sizes_bytes, values, linestyle="none", marker="x", markersize=6, color="black", label=label)
        for ax, ylabel in ((busbw_ax, "bus bandwidth (GB/s)"), (time_ax, "time (us)")):
            ax.set_xscale("log", base=2)
            ax.xaxis.set_major_formatter(FuncFormatter(lambda nbytes, _pos: format_bytes(int(nbytes))))
            ax.set_xlabel("size (B)")
            ax.set_ylabel(ylabel)
            ax.grid(True, which="major", alpha=0.4)
            ax.legend(fontsize=9)
        if np.nanmin([min(times) for _, times, _ in series.values()]) > 0:
            time_ax.set_yscale("log")
        busbw_ax.set_ylim(bottom=0)
        save_figure(fig, path)
