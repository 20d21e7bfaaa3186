"""DCQCN reaction point: the sending NIC's rate for one queue pair, driven by CNPs.

DCQCN (Zhu et al., "Congestion Control for Large-Scale RDMA Deployments", SIGCOMM 2015), in the
timer-driven form of the HPCC ns-3 simulator's ``RdmaHw`` (alibaba-edu/High-Precision-Congestion-
Control): the first CNP starts the timers. Every alpha interval, alpha <- (1 - g) alpha + g if a CNP
arrived in the interval, else (1 - g) alpha. Every rate-decrease interval with a CNP in it, the
target rate takes the current rate (if an increase tick came since the last cut), the rate is cut
to max(min_rate, rate (1 - alpha / 2)), and the increase timer restarts. Each increase-timer tick
moves the rate halfway to the target: the first ``fast_recovery_steps`` ticks leave the target as
it is (fast recovery), the next one raises it by the additive step, later ones by the hyper step,
never above line rate. Defaults in ``fabricsim.config.DcqcnSpec`` (reference/formulas.md).
The timers sleep while the queue pair has nothing to send (a timeout wait can last seconds): a
tick that finds it idle is the last; on waking, alpha takes the decay of the intervals it slept
through and the timers start again.
"""

from __future__ import annotations

from typing import Callable

from fabricsim.config import DcqcnSpec
from fabricsim.engine.packet_loop import EventLoop

REFERENCE_RATE_BPS = 25e9  # the HPCC configuration states its increase steps and ECN thresholds at 25 Gb/s


class DcqcnReactionPoint:
    """``rate_bps`` is what the queue pair may send at now."""

    __slots__ = ("loop", "spec", "line_rate_bps", "rate_bps", "target_bps", "alpha", "stage",
                 "cnp_for_alpha", "cnp_for_decrease", "started", "stopped", "asleep_since_ps", "busy",
                 "_epoch", "_increase_version", "_additive_bps", "_hyper_bps")

    def __init__(self, loop: EventLoop, spec: DcqcnSpec, line_rate_bps: float, busy: Callable[[], bool]) -> None:
        self.loop = loop
        self.spec = spec
        self.line_rate_bps = line_rate_bps
        self.rate_bps = line_rate_bps
        self.target_bps = line_rate_bps
        self.alpha = 1.0
        self.stage = 0
        self.cnp_for_alpha = False
        self.cnp_for_decrease = False
        self.started = False
        self.stopped = False
        self.asleep_since_ps: int | None = None
        self.busy = busy  # whether the queue pair has a packet to send
        self._epoch = 0  # alpha and decrease timers of an older epoch are stale
        self._increase_version = 0
        scale = line_rate_bps / REFERENCE_RATE_BPS
        self._additive_bps = spec.additive_increase_bps * scale
        self._hyper_bps = spec.hyper_increase_bps * scale

    def on_cnp(self) -> None:
        self.cnp_for_alpha = True
        self.cnp_for_decrease = True
        if not self.started:
            self.started = True
            self.cnp_for_alpha = False  # alpha starts at 1 with this CNP
            self._start_timers()
        else:
            self.wake()

    def wake(self) -> None:
        """The queue pair sends again after sleeping: catch alpha up and restart the timers."""
        if self.asleep_since_ps is None or self.stopped:
            return
        slept = (self.loop.now - self.asleep_since_ps) // self.spec.alpha_resume_interval_ps
        self.alpha *= (1 - self.spec.g) ** slept
        self.asleep_since_ps = None
        self._start_timers()

    def stop(self) -> None:
        """The queue pair is done: its timers end."""
        self.stopped = True
        self._epoch += 1
        self._increase_version += 1

    def _start_timers(self) -> None:
        self._epoch += 1
        self.loop.after(self.spec.alpha_resume_interval_ps, self._update_alpha, self._epoch)
        # one picosecond later, so a decrease at the same instant sees the alpha update first
        self.loop.after(self.spec.rate_decrease_interval_ps + 1, self._check_decrease, self._epoch)
        if self.stage or self.rate_bps < self.target_bps:
            self._restart_increase()

    def _restart_increase(self) -> None:
        self._increase_version += 1
        self.loop.after(self.spec.rate_increase_timer_ps, self._increase, self._increase_version)

    def _idle(self) -> bool:
        """After a tick's work: when the queue pair has nothing to send, every timer stops until ``wake``."""
        if self.busy():
            return False
        self.asleep_since_ps = self.loop.now
        self._epoch += 1
        self._increase_version += 1
        return True

    def _update_alpha(self, epoch: int) -> None:
        if epoch != self._epoch:
            return
        g = self.spec.g
        self.alpha = (1 - g) * self.alpha + (g if self.cnp_for_alpha else 0.0)
        self.cnp_for_alpha = False
        if not self._idle():
            self.loop.after(self.spec.alpha_resume_interval_ps, self._update_alpha, epoch)

    def _check_decrease(self, epoch: int) -> None:
        if epoch != self._epoch:
            return
        if self.cnp_for_decrease:
            self.cnp_for_decrease = False
            if self.stage != 0:
                self.target_bps = self.rate_bps
            self.rate_bps = max(self.spec.min_rate_bps, self.rate_bps * (1 - self.alpha / 2))
            self.stage = 0
            self._restart_increase()
        if not self._idle():
            self.loop.after(self.spec.rate_decrease_interval_ps, self._check_decrease, epoch)

    def _increase(self, version: int) -> None:
        if version != self._increase_version:
            return
        if self.stage == self.spec.fast_recovery_steps:
            self.target_bps = min(self.line_rate_bps, self.target_bps + self._additive_bps)
        elif self.stage > self.spec.fast_recovery_steps:
            self.target_bps = min(self.line_rate_bps, self.target_bps + self._hyper_bps)
        self.rate_bps = (self.rate_bps + self.target_bps) / 2
        self.stage += 1
        if not self._idle():
            self.loop.after(self.spec.rate_increase_timer_ps, self._increase, version)
