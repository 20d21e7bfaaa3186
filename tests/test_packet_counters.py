"""The packet model's counters reach the results: ports.csv per trial and port, and the breakdown in
trials.csv (an incast's time is contention, not ideal)."""

import csv

from fabricsim.cli import main
from fabricsim.engine.counters import PORT_COLUMNS, queue_depths
from tests.conftest import SCENARIOS


def read_csv(path):
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_incast_pfc_writes_its_port_counters(tmp_path):
    out = tmp_path / "incast"
    assert main(["run", str(SCENARIOS / "incast_pfc.yaml"), "--trials", "1", "-o", str(out)]) == 0
    with (out / "ports.csv").open() as handle:
        assert tuple(next(csv.reader(handle))) == PORT_COLUMNS
    ports = {row["link"]: row for row in read_csv(out / "ports.csv")}
    bottleneck = ports["switch->h0.nic0"]
    assert int(bottleneck["drops"]) == 0 and float(bottleneck["queue_p99_bytes"]) > 0
    senders = [row for link, row in ports.items() if link.endswith("->switch") and not link.startswith("h0.")]
    assert len(senders) == 8 and all(int(row["pause_frames"]) > 0 and float(row["paused_us"]) > 0 for row in senders)
    (trial,) = read_csv(out / "trials.csv")
    assert float(trial["contention_us"]) > float(trial["ideal_us"]) > 0


def test_queue_depths_are_percentiles_of_the_samples():
    assert queue_depths([]) == (0.0, 0.0, 0)
    p50, p99, peak = queue_depths(list(range(101)))
    assert (p50, p99, peak) == (50.0, 99.0, 100)
