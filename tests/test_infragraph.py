"""InfraGraph fabrics: a hand-written 2-host fabric equals its fabricsim scenario to the picosecond,
every topology survives export-fabric and import exactly, the package's own blueprints (a DGX, a Clos
fat tree) load and run at their links' bandwidth, and bad input is one line."""

import pytest
import yaml

pytest.importorskip("infragraph")

from fabricsim.cli import main  # noqa: E402
from fabricsim.config import load_scenario  # noqa: E402
from fabricsim.output import stats  # noqa: E402
from fabricsim.runner.simulation import Simulation  # noqa: E402
from tests.conftest import ROOT  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "infragraph"
ALL_GATHER = {"op": "all_gather", "algorithm": "ring"}


def _write(path, raw):
    path.write_text(yaml.safe_dump(raw))
    return path


def _latencies(path):
    simulation = Simulation(load_scenario(path), str(path))
    return [record.latency_ps for record in simulation.run()]


def test_hand_written_two_hosts_equal_the_same_fabric_as_a_scenario(tmp_path):
    workload = {"rule": "data_sizes", "data_sizes": ["1KiB", "1MiB", "64MiB"]}
    scenario = _write(tmp_path / "s.yaml", {"name": "s", "fabric": {"hosts": 2, "gpus_per_host": 2},
                                             "collective": ALL_GATHER, "workload": workload})
    graph = _write(tmp_path / "g.yaml", {"name": "g", "collective": ALL_GATHER, "workload": workload, "fabric": {
        "infragraph": str(FIXTURES / "two_hosts_four_gpus.yaml")}})
    expected = _latencies(scenario)
    assert _latencies(graph) == expected
    assert main(["export-fabric", str(graph), "-o", str(tmp_path / "again.yaml")]) == 0  # and written back out
    again = _write(tmp_path / "again_s.yaml", {"name": "a", "collective": ALL_GATHER, "workload": workload, "fabric": {
        "infragraph": "again.yaml", "infragraph_annotations": "again.annotations.yaml"}})
    assert _latencies(again) == expected
    simulation = Simulation(load_scenario(graph), str(graph))
    assert simulation.fabric.gpus == ["server.0.gpu.0", "server.0.gpu.1", "server.1.gpu.0", "server.1.gpu.1"]
    assert simulation.fabric.nic_of["server.1.gpu.1"] == "server.1.nic.1"
    # NCCL's ring, one channel per NIC: each NIC carries 3 steps of half of S/4 at 100 Gb/s
    size = 64 * 2**20 * 4
    assert expected[2] == pytest.approx(3 * size / 8 * 8 / 100e9 * 1e12, rel=0.01)


TOPOLOGIES = {
    "single_switch_pcie_tree": {"preset": "dgx_a100", "hosts": 2, "gpus_per_host": 4, "pcie_switches": 2},
    "single_switch_pcie_only": {"preset": "pcie_8gpu", "hosts": 1},
    "direct_ring": {"topology": "direct_ring", "hosts": 3, "gpus_per_host": 2, "nic": "roce_200g"},
    "leaf_spine": {"topology": "leaf_spine", "hosts": 4, "gpus_per_host": 2, "qps_per_rankpair": 2,
                   "clos": {"hosts_per_leaf": 2, "spines": 2, "oversubscription": 2, "ecmp": "hash"}},
    "rail_optimized_rail_first": {"preset": "dgx_h100", "topology": "rail_optimized", "hosts": 2,
                                  "placement": "rail_first", "clos": {"spines": 2}},
    "packet_model": {"hosts": 4, "nic": "roce_100g", "model": "packet"},
}


@pytest.mark.parametrize("fabric", TOPOLOGIES.values(), ids=TOPOLOGIES)
def test_every_topology_survives_export_and_import_to_the_picosecond(tmp_path, capsys, fabric):
    raw = {"name": "rt", "seed": 3, "fabric": fabric, "collective": {"op": "all_reduce", "algorithm": "ring"},
           "workload": {"rule": "data_sizes", "data_sizes": ["256KiB", "4MiB"], "trials": 2},
           "impairments": {} if fabric.get("model") == "packet" else {
               "jitter": {"distribution": "lognormal", "median": "2us", "sigma": 0.5}}}
    scenario = _write(tmp_path / "rt.yaml", raw)
    assert main(["export-fabric", str(scenario), "-o", str(tmp_path / "cluster.yaml")]) == 0
    capsys.readouterr()
    keep = {key: value for key, value in fabric.items()
            if key in ("preset", "nic", "qps_per_rankpair", "clos", "model")}
    imported = _write(tmp_path / "imported.yaml", {**raw, "fabric": {
        **keep, "infragraph": "cluster.yaml", "infragraph_annotations": "cluster.annotations.yaml"}})
    assert _latencies(imported) == _latencies(scenario)


@pytest.mark.parametrize("blueprint, shape, bottleneck_GBps", [
    # two DGX H100 on one switch, 400 Gb/s each NIC; the DGX's PCIe links state no bandwidth: the
    # scenario's (PCIe Gen5 x16, 64 GB/s) fills it in
    ("dgx_single_tier.yaml", (2, 8), 400 / 8),
    ("clos_fat_tree.yaml", (16, 2), 100 / 8),  # 16 generic servers, 100 Gb/s host links in tier 0
])
def test_infragraph_blueprints_load_and_run_at_their_links_bandwidth(tmp_path, blueprint, shape, bottleneck_GBps):
    path = _write(tmp_path / "b.yaml", {
        "name": "b", "fabric": {"infragraph": str(FIXTURES / blueprint), "pcie": {"bandwidth": "64GB/s", "latency": "250ns"}},
        "collective": {"op": "all_reduce", "algorithm": "flat_ring"},
        "workload": {"rule": "data_sizes", "data_sizes": ["256MiB"]}, "output": {"plots": False}})
    scenario = load_scenario(path)
    assert (scenario.fabric.hosts, scenario.fabric.gpus_per_host) == shape
    (latency_ps,) = _latencies(path)
    ranks = shape[0] * shape[1]
    busbw = float(stats.busbw_GBps("all_reduce", ranks, 256 * 2**20, latency_ps / 1e6))
    assert busbw == pytest.approx(bottleneck_GBps, rel=0.02)  # a ring's busbw tends to its slowest link


@pytest.mark.parametrize("fabric, expected", [
    ({"infragraph": "missing.yaml"}, "fabric.infragraph: expected a file path relative to the scenario"),
    ({"infragraph": "broken.yaml"}, "fabric.infragraph: expected a document the infragraph package accepts"),
    ({"infragraph": "no_gpus.yaml"}, "fabric.infragraph: expected xpu components"),
    ({"infragraph": str(FIXTURES / "two_hosts_four_gpus.yaml"), "hosts": 3},
     "fabric.hosts: expected 2 as in the InfraGraph fabric"),
])
def test_bad_infragraph_is_one_line(tmp_path, capsys, fabric, expected):
    document = yaml.safe_load((FIXTURES / "two_hosts_four_gpus.yaml").read_text())
    _write(tmp_path / "broken.yaml", {**document, "edges": [{**document["edges"][0], "ep2": {
        "instance": "nowhere[0]", "component": "port[0]"}}]})
    _write(tmp_path / "no_gpus.yaml", {**document, "devices": [document["devices"][1]],
                                       "instances": [document["instances"][1]], "edges": []})
    path = _write(tmp_path / "s.yaml", {"name": "s", "fabric": fabric, "workload": {
        "rule": "data_sizes", "data_sizes": [1024]}})
    assert main(["run", str(path), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert expected in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_export_fabric_replaces_only_its_own_files(tmp_path, capsys):
    scenario = ROOT / "scenarios" / "tp4_ring_allgather.yaml"
    out = tmp_path / "cluster.json"
    assert main(["export-fabric", str(scenario), "-o", str(out)]) == 0
    capsys.readouterr()
    (tmp_path / "mine.yaml").write_text("my notes\n")
    assert main(["export-fabric", str(scenario), "-o", str(tmp_path / "mine.yaml")]) == 2
    assert "refusing to replace it" in capsys.readouterr().err
    assert (tmp_path / "mine.yaml").read_text() == "my notes\n"
    assert main(["export-fabric", str(scenario), "-o", str(tmp_path / "again.yaml")]) == 0
    assert main(["export-fabric", str(scenario), "-o", str(tmp_path / "again.yaml")]) == 0  # its own: replaced
