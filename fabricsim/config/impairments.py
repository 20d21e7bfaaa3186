"""The impairments section: jitter and launch skew laws, packet loss, background traffic and link
failures."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from fabricsim.config.base import Spec, TimePs


_DISTRIBUTION_PARAMS = {
    "none": (),
    "constant": ("value",),
    "normal": ("mean", "std"),
    "lognormal": ("median", "sigma"),
    "exponential": ("mean",),
    "uniform": ("low", "high"),
    "empirical": ("samples",),
}


class DistributionSpec(Spec):
    """A random delay: ``distribution`` names the law and only its own parameters may be given.

    normal is truncated at zero; lognormal is given by its median and the sigma of its logarithm;
    empirical draws from measured ``samples`` (or a ``file`` of them, one time per line, which
    ``load_scenario`` reads relative to the scenario file).
    """

    distribution: Literal["none", "constant", "normal", "lognormal", "exponential", "uniform", "empirical"] = "none"
    value_ps: TimePs | None = Field(None, alias="value")
    mean_ps: TimePs | None = Field(None, alias="mean")
    std_ps: TimePs | None = Field(None, alias="std")
    median_ps: TimePs | None = Field(None, alias="median")
    sigma: float | None = Field(None, gt=0, le=20)
    low_ps: TimePs | None = Field(None, alias="low")
    high_ps: TimePs | None = Field(None, alias="high")
    samples_ps: tuple[TimePs, ...] | None = Field(None, alias="samples", min_length=1)

    @model_validator(mode="after")
    def _check_params(self) -> DistributionSpec:
        wanted = _DISTRIBUTION_PARAMS[self.distribution]
        given = {alias for alias, value in self._by_alias().items() if value is not None}
        missing = [name for name in wanted if name not in given]
        extra = sorted(given - set(wanted))
        if missing or extra:
            raise ValueError(
                f"expected distribution {self.distribution} to take exactly {list(wanted) or 'no parameters'}"
            )
        if self.distribution == "uniform" and self.high_ps < self.low_ps:
            raise ValueError("expected high >= low")
        return self

    def _by_alias(self) -> dict[str, object]:
        return {field.alias or name: getattr(self, name)
                for name, field in type(self).model_fields.items() if name != "distribution"}


class LossSpec(Spec):
    rate: float = Field(0.0, ge=0, lt=1, description="probability that a packet is lost")
    links: dict[str, Annotated[float, Field(ge=0, lt=1)]] = Field(
        default_factory=dict, description="more loss on named links (src->dst), on a transfer's first flow's route")
    timeout_exponent: int = Field(20, ge=0, le=31, description="RTO = 4.096 us x 2^exponent")
    retry_count: int = Field(7, ge=0, le=7, description="retransmissions before the QP fails")


class BackgroundSpec(Spec):
    """Competing traffic for the whole trial: one flow per chosen link, at most ``load`` of its capacity."""

    load: float = Field(0.0, ge=0, lt=1, description="fraction of each chosen link the competing flow asks for")
    links: tuple[str, ...] = Field((), description="directed links by name, e.g. leaf0->spine1")
    hosts_fraction: float = Field(0.0, ge=0, le=1, description="hosts drawn per trial: their NIC links in and out")


class FailureSpec(Spec):
    """A cable (both directions) going down, ``flaps`` times, ``period`` apart, from a per-trial start time."""

    cable: tuple[str, str] = Field(description="the two devices it joins, e.g. [leaf0, spine1]")
    down_at: DistributionSpec = Field(description="time of the first failure after the trial starts")
    down_for_ps: TimePs | None = Field(None, alias="down_for", description="default: for good")
    flaps: int = Field(1, ge=1)
    period_ps: TimePs | None = Field(None, alias="period", description="from one failure to the next")
    detection_ps: TimePs = Field(100_000_000, alias="detection_delay", description="until flows re-route")

    @model_validator(mode="after")
    def _check_flaps(self) -> FailureSpec:
        if self.flaps > 1 and (self.down_for_ps is None or self.period_ps is None
                               or self.period_ps <= self.down_for_ps):
            raise ValueError("flapping (flaps > 1) needs down_for and a period longer than down_for")
        return self


class ImpairmentsSpec(Spec):
    jitter: DistributionSpec = DistributionSpec()
    launch_skew: DistributionSpec = Field(DistributionSpec(), description="per rank, per collective: stragglers")
    loss: LossSpec = LossSpec()
    background: BackgroundSpec = BackgroundSpec()
    failures: tuple[FailureSpec, ...] = ()
