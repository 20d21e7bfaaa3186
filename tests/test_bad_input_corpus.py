"""A corpus of bad inputs, one per row: each is exit 2, exactly one line on stderr naming the file and the
key (or flag), no traceback, nothing on stdout, and the folder around it byte for byte as it was, a
decoy result folder in the target included."""

import json

import pytest

from fabricsim.cli import main
from fabricsim.output.result_folder import MARKER
from tests.conftest import ROOT
from tests.folder_snapshot import snapshot, workspace

GOOD = """\
name: bad
fabric: {hosts: 4, nic: {bandwidth: 100Gbps}}
collective: {op: all_gather}
workload: {rule: data_sizes, data_sizes: [1MiB], trials: 1}
output: {plots: false}
"""
TRANSFORMER = "{hidden_size: 256, layers: 2, heads: 4, ffn_size: 512, vocab_size: 1000}"
MEGATRON = f"""\
name: mega
fabric: {{hosts: 1, gpus_per_host: 4}}
workload: {{rule: megatron, transformer: {TRANSFORMER}, batch_size: 1, seq_len: 128, trials: 1,
           parallelism: {{tp: 4}}}}
"""
JOB = f"{{hosts: 1, workload: {{rule: megatron, transformer: {TRANSFORMER}, batch_size: 1, seq_len: 128, trials: 1, " \
      "parallelism: {tp: 2}}}"
JOBS = f"name: jobs\nfabric: {{hosts: 2, gpus_per_host: 2}}\njobs: [{JOB}, {JOB}]\noutput: {{plots: false}}\n"
LEAF_SPINE = GOOD.replace("hosts: 4,", "hosts: 4, topology: leaf_spine, clos: {hosts_per_leaf: 2, spines: 2},")
HF = {"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 2, "num_attention_heads": 32,
      "intermediate_size": 11008, "vocab_size": 32000}
# the hand-written InfraGraph fabric with a third server whose NICs are cabled to nothing
CUT_OFF = (ROOT / "tests" / "fixtures" / "infragraph" / "two_hosts_four_gpus.yaml").read_text() \
    .replace("{name: server, device: server, count: 2}", "{name: server, device: server, count: 3}")
# a pipeline over the 3 servers: rank 0's calls (stage 0's, on servers 0 and 1) reach only the first two
PIPELINE = MEGATRON.replace("hosts: 1, gpus_per_host: 4", "infragraph: g.yaml").replace("layers: 2", "layers: 3") \
    .replace("rule: megatron,", "rule: megatron, scope: job,").replace("{tp: 4}", "{tp: 2, pp: 3}")
BOMB = "name: bad\na: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 10)}]\n" for prev, name in zip("abcdef", "bcdefg"))


def _with(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new)


def _impairments(text: str) -> str:
    return GOOD + f"impairments: {text}\n"


def _hf(**changes) -> str:
    return json.dumps(HF | changes)


# id: (files written beside the decoys, the command line, the words the one line must hold)
CASES = {
    # files that are not UTF-8 text, YAML that would hang or mislead
    "binary_file": ({"s.yaml": b"\x00\x01\x02\xff\xfe\x89PNG"}, ["run", "s.yaml"], ["s.yaml: expected UTF-8 text"]),
    "latin1_file": ({"s.yaml": GOOD.replace("name: bad", "name: caf\xe9").encode("latin-1")}, ["run", "s.yaml"],
                    ["s.yaml: expected UTF-8 text"]),
    "utf16_file": ({"s.yaml": GOOD.encode("utf-16")}, ["run", "s.yaml"], ["s.yaml: expected UTF-8 text"]),
    "nul_character": ({"s.yaml": GOOD + "\x00\n"}, ["run", "s.yaml"], ["s.yaml: malformed YAML: a control character"]),
    "too_large_file": ({"s.yaml": GOOD + "#" * (5 * 2**20) + "\n"}, ["run", "s.yaml"], ["s.yaml: expected a file of at most 4 MiB"]),
    "empty_file": ({"s.yaml": ""}, ["run", "s.yaml"], ["s.yaml: expected a mapping of keys at the top level"]),
    "recursive_alias": ({"s.yaml": GOOD + "matrix: &m {fabric.hosts: [*m]}\n"}, ["run", "s.yaml"],
                        ["s.yaml: expected no recursive alias"]),
    "deep_nesting": ({"s.yaml": GOOD + "matrix: " + "[" * 5000 + "]" * 5000 + "\n"}, ["run", "s.yaml"],
                     ["s.yaml: expected at most 64 levels of nesting"]),
    "moderate_nesting": ({"s.yaml": GOOD + "matrix: " + "[" * 100 + "]" * 100 + "\n"}, ["run", "s.yaml"],
                         ["s.yaml: expected at most 64 levels of nesting"]),
    "alias_bomb": ({"s.yaml": BOMB}, ["run", "s.yaml"], ["s.yaml: expected at most 1000000 values once aliases"]),
    "duplicate_top_key": ({"s.yaml": GOOD + "fabric: {hosts: 8}\n"}, ["run", "s.yaml"],
                          ["s.yaml: malformed YAML at line 6, column 1: duplicate key 'fabric'"]),
    "duplicate_nested_key": ({"s.yaml": _with(GOOD, "hosts: 4,", "hosts: 4, hosts: 8,")}, ["run", "s.yaml"],
                             ["s.yaml: malformed YAML", "duplicate key 'hosts'"]),
    "base_60_ratio": ({"s.yaml": LEAF_SPINE.replace("spines: 2}", "spines: 2, oversubscription: 2:0}")},
                      ["run", "s.yaml"], ["s.yaml: fabric.clos.oversubscription: expected a ratio such as 2 or 2:1"]),
    "base_60_integer": ({"s.yaml": _with(GOOD, "hosts: 4", "hosts: 1:30")}, ["run", "s.yaml"],
                        ["s.yaml: fabric.hosts: expected a valid integer", "got '1:30'"]),
    # quantities that overflow, vanish or wrap
    "huge_size": ({"s.yaml": _with(GOOD, "[1MiB]", "[1e400]")}, ["run", "s.yaml"],
                  ["s.yaml: workload.data_sizes.0: expected a size from 0 to 1PiB, got '1e400'"]),
    "zero_size": ({"s.yaml": _with(GOOD, "[1MiB]", "[0]")}, ["run", "s.yaml"],
                  ["s.yaml: workload.data_sizes.0: expected greater than or equal to 1"]),
    "zero_mtu": ({"s.yaml": _with(GOOD, "100Gbps}", "100Gbps, mtu: 0}")}, ["run", "s.yaml"],
                 ["s.yaml: fabric.nic.mtu: expected greater than 0"]),
    "huge_rate": ({"s.yaml": _with(GOOD, "100Gbps", "1e400Gbps")}, ["run", "s.yaml"],
                  ["s.yaml: fabric.nic.bandwidth: expected a rate from 1kbps to 1Pbps, got '1e400Gbps'"]),
    "vanishing_rate": ({"s.yaml": _with(GOOD, "100Gbps", "1e-30bps")}, ["run", "s.yaml"],
                       ["s.yaml: fabric.nic.bandwidth: expected a rate from 1kbps to 1Pbps"]),
    "infinite_rate": ({"s.yaml": _with(GOOD, "100Gbps", ".inf")}, ["run", "s.yaml"],
                      ["s.yaml: fabric.nic.bandwidth: expected a rate"]),
    "huge_size_range": ({"s.yaml": _with(GOOD, "[1MiB]", "{start: 1, end: 1TiB, step: 1.000001}")}, ["run", "s.yaml"],
                        ["s.yaml: workload.data_sizes: expected a range of at most 100000 sizes"]),
    "cable_latency_1000s": ({"s.yaml": _with(GOOD, "hosts: 4,", "hosts: 4, cable_latency: 1000s,")}, ["run", "s.yaml"],
                            ["s.yaml: fabric.cable_latency: expected a time from 0ps to 1s, got '1000s'"]),
    "nic_latency_hours": ({"s.yaml": _with(GOOD, "100Gbps}", "100Gbps, latency: 2h}")}, ["run", "s.yaml"],
                          ["s.yaml: fabric.nic.latency: expected a time such as"]),
    "switch_latency_over_range": ({"s.yaml": _with(GOOD, "hosts: 4,", "hosts: 4, switch: {latency: 5s},")},
                                  ["run", "s.yaml"], ["s.yaml: fabric.switch.latency: expected a time from 0ps to 1s"]),
    "jitter_median_wraps": ({"s.yaml": _impairments("{jitter: {distribution: lognormal, median: 1e30s, sigma: 1}}")},
                            ["run", "s.yaml"], ["s.yaml: impairments.jitter.median: expected a time from 0ps to 86400s"]),
    "jitter_sigma_wraps": ({"s.yaml": _impairments("{jitter: {distribution: lognormal, median: 1us, sigma: 1.0e+300}}")},
                           ["run", "s.yaml"], ["s.yaml: impairments.jitter.sigma: expected less than or equal to 20"]),
    "jitter_sigma_nan": ({"s.yaml": _impairments("{jitter: {distribution: lognormal, median: 1us, sigma: .nan}}")},
                         ["run", "s.yaml"], ["s.yaml: impairments.jitter.sigma: expected a finite number"]),
    "jitter_mean_infinite": ({"s.yaml": _impairments("{jitter: {distribution: exponential, mean: 1e400us}}")},
                             ["run", "s.yaml"], ["s.yaml: impairments.jitter.mean: expected a time from 0ps"]),
    "sample_out_of_range": ({"s.yaml": _impairments("{jitter: {distribution: empirical, samples: [1us, 1e400s]}}")},
                            ["run", "s.yaml"], ["s.yaml: impairments.jitter.samples.1: expected a time from 0ps"]),
    "loss_rate_nan": ({"s.yaml": _impairments("{loss: {rate: .nan}}")}, ["run", "s.yaml"],
                      ["s.yaml: impairments.loss.rate: expected a finite number"]),
    "background_load_infinite": ({"s.yaml": _impairments("{background: {load: .inf}}")}, ["run", "s.yaml"],
                                 ["s.yaml: impairments.background.load: expected a finite number"]),
    "oversubscription_infinite": ({"s.yaml": LEAF_SPINE.replace("spines: 2}", "spines: 2, oversubscription: .inf}")},
                                  ["run", "s.yaml"], ["s.yaml: fabric.clos.oversubscription: expected a finite number"]),
    "oversubscription_huge": ({"s.yaml": LEAF_SPINE.replace("spines: 2}", "spines: 2, oversubscription: 1.0e+12}")},
                              ["run", "s.yaml"], ["s.yaml: fabric.clos.oversubscription: expected less than or equal to 1000"]),
    "packet_kmax_huge": ({"s.yaml": _with(GOOD, "hosts: 4,", "hosts: 4, model: packet, packet: {ecn: {kmax: 1e400}},")},
                         ["run", "s.yaml"], ["s.yaml: fabric.packet.ecn.kmax: expected a size from 0 to 1PiB"]),
    "seed_overflows": ({"s.yaml": GOOD + "seed: 1e400\n"}, ["run", "s.yaml"], ["s.yaml: seed: expected a valid integer"]),
    "hosts_float": ({"s.yaml": _with(GOOD, "hosts: 4", "hosts: 4.5")}, ["run", "s.yaml"], ["s.yaml: fabric.hosts: expected"]),
    # keys a rule ignores, units that are needed, the right key named
    "op_under_megatron": ({"s.yaml": MEGATRON + "collective: {op: broadcast}\n"}, ["run", "s.yaml"],
                          ["s.yaml: collective.op: expected no collective.op under workload rule megatron"]),
    "root_under_megatron": ({"s.yaml": MEGATRON + "collective: {root: 2}\n"}, ["run", "s.yaml"],
                            ["s.yaml: collective.root: expected no"]),
    "model_under_data_sizes": ({"s.yaml": _with(GOOD, "trials: 1}", f"trials: 1, transformer: {TRANSFORMER}}}")},
                               ["run", "s.yaml"], ["s.yaml: workload.transformer: expected no transformer under rule data_sizes"]),
    "batch_size_under_data_sizes": ({"s.yaml": _with(GOOD, "trials: 1}", "trials: 1, batch_size: 8}")}, ["run", "s.yaml"],
                                    ["s.yaml: workload.batch_size: expected no batch_size under rule data_sizes"]),
    "parallelism_under_data_sizes": ({"s.yaml": _with(GOOD, "trials: 1}", "trials: 1, parallelism: {tp: 4}}")},
                                     ["run", "s.yaml"], ["s.yaml: workload.parallelism: expected no parallelism under rule data_sizes"]),
    "pp_under_tensor_parallel": (
        {"s.yaml": _with(GOOD, "{rule: data_sizes, data_sizes: [1MiB], trials: 1}",
                         "{rule: tensor_parallel, model: models/m.yaml, dataset_samples: 8, batch_size: 8, "
                         "parallelism: {tp: 4, pp: 2}}"),
         "models/m.yaml": "name: m\ninput: {shape: [4]}\nlayers: [{name: fc, in_features: 4, out_features: 4}]\n"},
        ["run", "s.yaml"], ["s.yaml: workload.parallelism.pp: expected no parallelism.pp under rule tensor_parallel"]),
    "seq_len_under_data_sizes": ({"s.yaml": _with(GOOD, "trials: 1}", "trials: 1, seq_len: 128}")}, ["run", "s.yaml"],
                                 ["s.yaml: workload.seq_len: expected no seq_len"]),
    "virtual_stages_on_two_stages": ({"s.yaml": _with(MEGATRON, "{tp: 4}", "{tp: 1, pp: 2, dp: 2, virtual_stages: 2}")},
                                     ["run", "s.yaml"],
                                     ["s.yaml: workload.parallelism.virtual_stages: expected pp above 2"]),
    "bucket_without_unit": ({"s.yaml": _with(MEGATRON, "{tp: 4}", "{tp: 4, bucket: 25}")}, ["run", "s.yaml"],
                            ["s.yaml: workload.parallelism.bucket: expected a size with its unit such as 25MiB"]),
    "root_outside_the_ranks": ({"s.yaml": _with(GOOD, "{op: all_gather}", "{op: broadcast, root: 9}")},
                               ["run", "s.yaml"], ["s.yaml: collective.root: expected a rank below the fabric's 4 GPUs"]),
    "nvls_without_switch_reduction": ({"s.yaml": _with(GOOD, "{op: all_gather}", "{op: all_reduce, algorithm: NVLS}")},
                                      ["run", "s.yaml"], ["s.yaml: collective.algorithm: expected nvls only on "
                                                          "NVSwitches that reduce (fabric.nvswitch.nvls_bandwidth"]),
    "nvls_across_hosts": ({"s.yaml": _with(_with(GOOD, "{op: all_gather}", "{op: all_reduce, algorithm: nvls}"),
                                           "hosts: 4,", "preset: dgx_h100, hosts: 2,")},
                          ["run", "s.yaml"], ["s.yaml: collective.algorithm: expected nvls on one host of 2 GPUs or more"]),
    "nvls_all_gather_across_hosts_with_sharp": ({"s.yaml": _with(_with(GOOD, "{op: all_gather}", "{op: all_gather, algorithm: nvls}"),
                                                                 "hosts: 4,", "preset: dgx_h100, hosts: 2, clos: {sharp: true},")},
                                                ["run", "s.yaml"], ["s.yaml: collective.algorithm: expected nvls on one host",
                                                                    "or for all_reduce across hosts where switches reduce"]),
    "nvls_all_gather_over_72": ({"s.yaml": _with(_with(GOOD, "{op: all_gather}", "{op: all_gather, algorithm: NVLS}"),
                                                 "hosts: 4,", "preset: gb200_nvl72, hosts: 1,")},
                                ["run", "s.yaml"], ["s.yaml: collective.algorithm: expected nvls all_gather with at most 32 "
                                                    "GPUs per host (as NCCL), got 72"]),
    "nvls_in_a_whole_job_step": ({"s.yaml": _with(_with(MEGATRON, "hosts: 1, gpus_per_host: 4", "preset: dgx_h100, hosts: 1, "
                                                   "gpus_per_host: 4"), "workload:", "collective: {algorithm: nvls}\nworkload:")},
                                 ["run", "s.yaml"], ["s.yaml: collective.algorithm: expected nvls on calls run one at a time "
                                                     "(workload.scope rank0, no jobs)"]),
    "nvls_tree_on_one_host": ({"s.yaml": _with(_with(GOOD, "{op: all_gather}", "{op: all_reduce, algorithm: NVLSTree}"),
                                               "hosts: 4,", "preset: dgx_h100, hosts: 1,")},
                              ["run", "s.yaml"], ["s.yaml: collective.algorithm: expected nvls_tree across hosts"]),
    "collnet_without_sharp": ({"s.yaml": _with(GOOD, "{op: all_gather}", "{op: all_reduce, algorithm: CollNetDirect}")},
                              ["run", "s.yaml"], ["s.yaml: collective.algorithm: expected collnet_direct only where "
                                                  "switches reduce in the network (fabric.clos.sharp: true)"]),
    "collnet_on_direct_ring": ({"s.yaml": _with(_with(GOOD, "{op: all_gather}", "{op: all_reduce, algorithm: CollNetChain}"),
                                                "hosts: 4,", "hosts: 4, topology: direct_ring, clos: {sharp: true},")},
                               ["run", "s.yaml"], ["s.yaml: collective.algorithm: expected collnet_chain where the NICs are "
                                                   "cabled to switches", "got direct_ring"]),
    "name_dot_dot": ({"s.yaml": _with(GOOD, "name: bad", "name: '..'")}, ["run", "s.yaml"], ["s.yaml: name: expected a plain file name"]),
    "name_with_slash": ({"s.yaml": _with(GOOD, "name: bad", "name: a/b")}, ["run", "s.yaml"], ["s.yaml: name: expected"]),
    "set_name_dot": ({"s.yaml": GOOD}, ["run", "s.yaml", "--set", "name=."], ["s.yaml: name: expected a plain file name"]),
    "set_invalid_yaml": ({"s.yaml": GOOD}, ["run", "s.yaml", "--set", "fabric.hosts=[4"],
                         ["s.yaml: --set fabric.hosts: the value '[4' is not valid YAML"]),
    "set_duplicate_key": ({"s.yaml": GOOD}, ["run", "s.yaml", "--set", "fabric.nic={mtu: 1, mtu: 2}"],
                          ["s.yaml: --set fabric.nic:", "duplicate key 'mtu'"]),
    "set_list_index_out_of_range": ({"s.yaml": JOBS}, ["run", "s.yaml", "--set", "jobs.2.placement=fragmented"],
                                    ["s.yaml: --set jobs.2.placement: jobs: expected an index of its 2 items (0 to 1)"]),
    "set_list_index_not_a_number": ({"s.yaml": JOBS}, ["run", "s.yaml", "--set", "jobs.last.hosts=1"],
                                    ["s.yaml: --set jobs.last.hosts: jobs: expected an index", "got 'last'"]),
    "set_list_item_unknown_key": ({"s.yaml": JOBS}, ["run", "s.yaml", "--set", "jobs.1.placemnt=packed"],
                                  ["s.yaml: jobs.1.placemnt: unknown key"]),
    "matrix_list_index_out_of_range": ({"s.yaml": JOBS + "matrix: {jobs.2.placement: [packed, fragmented]}\n"},
                                       ["compare", "s.yaml"],
                                       ["s.yaml: matrix: expected in jobs.2.placement an index of the 2 items of jobs"]),
    "matrix_list_item_unknown_key": ({"s.yaml": JOBS + "matrix: {jobs.1.placemnt: [packed, fragmented]}\n"},
                                     ["compare", "s.yaml"], ["s.yaml: matrix: expected key paths of the scenario"]),
    "matrix_unknown_key": ({"s.yaml": GOOD + "matrix: {fabric.hostz: [2, 4]}\n"}, ["compare", "s.yaml"],
                           ["s.yaml: matrix: expected key paths of the scenario"]),
    # fabrics a whole-job step's groups cannot all cross
    "step_group_cut_off": ({"s.yaml": PIPELINE, "g.yaml": CUT_OFF}, ["run", "s.yaml"],
                           ["s.yaml: fabric: expected a connected topology", "server.2.gpu."]),
    "job_group_cut_off": ({"s.yaml": "name: jobs\nfabric: {infragraph: g.yaml}\njobs: [{hosts: 3, workload: "
                                     + PIPELINE.split("workload: ", 1)[1].replace("\n", " ") + "}]\n",
                           "g.yaml": CUT_OFF}, ["run", "s.yaml"],
                          ["s.yaml: fabric: expected a connected topology", "server.2.gpu."]),
    # work too big to finish, estimated at once
    "a_billion_hosts": ({"s.yaml": _with(GOOD, "hosts: 4", "hosts: 1000000000")}, ["run", "s.yaml"],
                        ["s.yaml: fabric.hosts: expected at most 16384 GPUs", "--allow-large"]),
    "a_hundred_million_chunks": ({"s.yaml": _with(GOOD, "{op: all_gather}", "{op: all_gather, chunks: 100000000}")},
                                 ["run", "s.yaml"], ["s.yaml: collective.chunks: expected at most 33554432 transfers"]),
    "ten_million_flaps": ({"s.yaml": LEAF_SPINE + "impairments: {failures: [{cable: [leaf0, spine0], down_at: "
                                                  "{distribution: constant, value: 1us}, down_for: 1us, period: 2us, "
                                                  "flaps: 10000000}]}\n"},
                          ["run", "s.yaml"], ["s.yaml: impairments.failures: expected at most 100000 flaps"]),
    "a_trillion_trials": ({"s.yaml": _with(GOOD, "trials: 1}", "trials: 1000000000000}")}, ["run", "s.yaml"],
                          ["s.yaml: workload.trials: expected at most 10000000 trials", "GiB"]),
    "a_trillion_trials_by_flag": ({"s.yaml": GOOD}, ["compare", "s.yaml", "s.yaml", "--trials", "1000000000000"],
                                  ["s.yaml: workload.trials: expected at most 10000000 trials"]),
    "a_billion_spines": ({"s.yaml": LEAF_SPINE.replace("spines: 2}", "spines: 1000000000}")}, ["run", "s.yaml"],
                         ["s.yaml: fabric.clos.spines: expected at most 16384 spines"]),
    "a_hundred_million_queue_pairs": ({"s.yaml": _with(GOOD, "hosts: 4,", "hosts: 4, qps_per_rankpair: 100000000,")},
                                      ["run", "s.yaml"], ["s.yaml: fabric.qps_per_rankpair: expected at most 33554432 flows"]),
    "a_billion_packets": ({"s.yaml": _with(_with(GOOD, "hosts: 4,", "hosts: 4, model: packet,"), "[1MiB]", "[1GiB]")
                                     .replace("100Gbps}", "100Gbps, mtu: 64}")},
                          ["run", "s.yaml"], ["s.yaml: fabric.model: expected at most 100000000 packets and DCQCN timer events per trial"]),
    "a_trial_past_the_clock": ({"s.yaml": _with(_with(GOOD, "100Gbps", "1kbps"), "[1MiB]", "[1TiB]")},
                               ["run", "s.yaml", "--allow-large"],
                               ["s.yaml: fabric.nic.bandwidth: expected a trial that 64-bit picoseconds can time"]),
    "packet_model_timers_at_a_crawl": ({"s.yaml": _with(_with(GOOD, "hosts: 4,", "hosts: 4, model: packet,"),
                                                       "100Gbps", "1kbps")}, ["run", "s.yaml"],
                                       ["s.yaml: fabric.model: expected at most 100000000 packets and DCQCN timer"]),
    "a_hundred_thousand_workers": ({"s.yaml": GOOD}, ["run", "s.yaml", "--workers", "100000"],
                                   ["--workers: expected at most 256 local worker processes"]),
    "trials_beyond_any_integer": ({"s.yaml": GOOD}, ["run", "s.yaml", "--trials", "99999999999999999999999"],
                                  ["s.yaml: workload.trials: expected at most 10000000 trials"]),
    "a_billion_micro_batches": ({"s.yaml": _with(MEGATRON, "{tp: 4}", "{tp: 4, micro_batches: 1000000000}")},
                                ["run", "s.yaml"], ["s.yaml: workload.parallelism.micro_batches: expected at most"]),
    "check_too_large": ({"s.yaml": GOOD}, ["check", "s.yaml", "--trials", "100000000000"],
                        ["s.yaml: workload.trials: expected at most"]),
    # command lines
    "sweep_infinite_factor": ({"s.yaml": GOOD}, ["sweep", "s.yaml", "-b", "8", "-e", "1G", "-f", "inf"],
                              ["-b/-e/-f: expected a finite multiplicative step above 1"]),
    "sweep_nan_factor": ({"s.yaml": GOOD}, ["sweep", "s.yaml", "-b", "8", "-e", "1G", "-f", "nan"],
                         ["-b/-e/-f: expected a finite multiplicative step above 1"]),
    "sweep_too_many_iterations": ({"s.yaml": GOOD}, ["sweep", "s.yaml", "-b", "8", "-e", "64", "-n", "10000000000"],
                                  ["-n: expected at most 10000000 iterations"]),
    "sweep_huge_size": ({"s.yaml": GOOD}, ["sweep", "s.yaml", "-b", "8", "-e", "1e400"], ["-e: expected a size"]),
    "dask_address_not_one": ({"s.yaml": GOOD}, ["run", "s.yaml", "--executor", "dask", "--scheduler", "not an address"],
                             ["--scheduler: expected a Dask scheduler address such as tcp://HOST:PORT"]),
    "dask_address_without_port": ({"s.yaml": GOOD}, ["run", "s.yaml", "--executor", "dask", "--scheduler", "tcp://host"],
                                  ["--scheduler: expected a Dask scheduler address"]),
    "scheduler_without_dask": ({"s.yaml": GOOD}, ["run", "s.yaml", "--scheduler", "tcp://127.0.0.1:8786"],
                               ["--scheduler: expected --executor dask with it"]),
    "update_baseline_under_a_file": ({"s.yaml": GOOD}, ["check", "s.yaml", "--baseline", "notes.txt/b.json", "--update"],
                                     ["--baseline notes.txt/b.json: expected a path a baseline can be written to",
                                      "under the file"]),
    "run_under_a_file": ({"s.yaml": GOOD}, ["run", "s.yaml", "-o", "notes.txt/out"], ["-o notes.txt/out: ", "under the file"]),
    "sweep_onto_a_file": ({"s.yaml": GOOD}, ["sweep", "s.yaml", "-b", "8", "--output", "notes.txt"], ["--output notes.txt: ", "existing file"]),
    "plan_infinite_tflops": ({}, ["plan", "llama-2-7b", "--tflops", "inf"], ["--tflops", "expected a positive finite number"]),
    "plan_nan_tflops": ({}, ["plan", "llama-2-7b", "--tflops", "nan"], ["--tflops", "expected a positive finite number"]),
    "plan_plot_onto_a_folder": ({}, ["plan", "llama-2-7b", "--plot", "docs"], ["--plot docs: ", "a folder"]),
    "plan_plot_onto_a_text_file": ({}, ["plan", "llama-2-7b", "--plot", "notes.txt"], ["--plot notes.txt: ", "not a PNG"]),
    "plan_plot_into_a_missing_folder": ({}, ["plan", "llama-2-7b", "--plot", "nowhere/p.png"], ["--plot nowhere/p.png: "]),
    "plan_tp_zero": ({}, ["plan", "llama-2-7b", "--tp", "0,2"], ["--tp", "expected positive TP degrees"]),
    # Hugging Face configs
    "hf_heads_do_not_divide": ({"hf.json": _hf(num_attention_heads=30)}, ["plan", "hf.json"],
                               ["hf.json: heads: expected heads dividing hidden_size 4096"]),
    "hf_heads_as_text": ({"hf.json": _hf(num_attention_heads="32")}, ["plan", "hf.json"],
                         ["hf.json: heads: expected a valid integer"]),
    "hf_hidden_size_as_bool": ({"hf.json": _hf(hidden_size=True)}, ["plan", "hf.json"], ["hf.json: hidden_size: expected"]),
    "hf_layers_fractional": ({"hf.json": _hf(num_hidden_layers=2.5)}, ["plan", "hf.json"], ["hf.json: layers: expected"]),
    "hf_kv_heads_do_not_divide": ({"hf.json": _hf(num_key_value_heads=5)}, ["plan", "hf.json"],
                                  ["hf.json: kv_heads: expected KV heads dividing the 32 heads"]),
    "hf_not_utf8": ({"hf.json": _hf().encode("utf-16")}, ["plan", "hf.json"], ["hf.json: expected UTF-8 text"]),
    "hf_unknown_model_type": ({"hf.json": _hf(model_type="gpt9")}, ["plan", "hf.json"], ["hf.json: ", "model_type"]),
    "scenario_with_bad_hf_config": (
        {"s.yaml": _with(MEGATRON, f"transformer: {TRANSFORMER}", "transformer: hf.json"),
         "hf.json": _hf(num_attention_heads=30)},
        ["run", "s.yaml"], ["s.yaml: workload.transformer.heads: expected heads dividing"]),
    # files the scenario points at: named by the scenario and its key, never quoted
    "samples_from_a_secret_file": ({"s.yaml": _impairments("{jitter: {distribution: empirical, file: secret.txt}}"),
                                    "secret.txt": "root:x:0:0:hunter2:/root:/bin/bash\n"}, ["run", "s.yaml"],
                                   ["s.yaml: impairments.jitter.samples.0: expected a time"]),
    "samples_not_utf8": ({"s.yaml": _impairments("{jitter: {distribution: empirical, file: secret.bin}}"),
                          "secret.bin": b"\xff\xfe\x00hunter2"}, ["run", "s.yaml"],
                         ["s.yaml: impairments.jitter.file: expected UTF-8 text"]),
    "model_is_a_secret_text": ({"s.yaml": _with(MEGATRON, f"transformer: {TRANSFORMER}", "transformer: secret.txt"),
                                "secret.txt": "root:x:0:0:hunter2:/root:/bin/bash\n"}, ["run", "s.yaml"],
                               ["s.yaml: workload.transformer: secret.txt: expected a mapping of keys"]),
    "model_is_malformed_yaml": ({"s.yaml": _with(MEGATRON, f"transformer: {TRANSFORMER}", "transformer: secret.txt"),
                                 "secret.txt": "password: 'hunter2\n  - [\n"}, ["run", "s.yaml"],
                                ["s.yaml: workload.transformer: secret.txt: malformed YAML"]),
    "model_value_not_quoted": ({"s.yaml": _with(MEGATRON, f"transformer: {TRANSFORMER}", "transformer: secret.yaml"),
                                "secret.yaml": "hidden_size: hunter2\nlayers: 2\nheads: 4\nffn_size: 8\nvocab_size: 8\n"},
                               ["run", "s.yaml"], ["s.yaml: workload.transformer.hidden_size: expected a valid integer"]),
    "model_file_missing": ({"s.yaml": _with(MEGATRON, f"transformer: {TRANSFORMER}", "transformer: nope.json")},
                           ["run", "s.yaml"], ["s.yaml: workload.transformer: expected a file path relative to the scenario"]),
    # hand-edited or damaged baselines
    "baseline_empty_mapping": ({"tiny.yaml": GOOD.replace("name: bad", "name: tiny")}, ["check", "tiny.yaml"],
                               ["results/baselines/tiny.json: trials: expected a whole number of trials"]),
    "baseline_not_json": ({"s.yaml": GOOD, "b.json": "{trials: 3"}, ["check", "s.yaml", "--baseline", "b.json"],
                          ["b.json: expected a baseline written by fabricsim check --update"]),
    "baseline_a_list": ({"s.yaml": GOOD, "b.json": "[1, 2]"}, ["check", "s.yaml", "--baseline", "b.json"],
                        ["b.json: (top level): expected a mapping of keys"]),
    "baseline_latencies_cut_short": ({"s.yaml": GOOD, "b.json": "BASELINE:trial_latency_ps=[5]"},
                                     ["check", "s.yaml", "--baseline", "b.json"],
                                     ["b.json: trial_latency_ps: expected a list of 3 whole picosecond times"]),
    "baseline_failed_index_out_of_range": ({"s.yaml": GOOD, "b.json": "BASELINE:failed_trial_indices=[7]"},
                                           ["check", "s.yaml", "--baseline", "b.json"],
                                           ["b.json: failed_trial_indices: expected a list of trial indices below 3"]),
    "baseline_percentile_missing": ({"s.yaml": GOOD, "b.json": "BASELINE:latency_us={\"p50\": 1.0}"},
                                    ["check", "s.yaml", "--baseline", "b.json"], ["b.json: latency_us: expected null or"]),
    "baseline_latency_negative": ({"s.yaml": GOOD, "b.json": "BASELINE:trial_latency_ps=[1, -2, 3]"},
                                  ["check", "s.yaml", "--baseline", "b.json"], ["b.json: trial_latency_ps: expected"]),
    "baseline_busbw_text": ({"s.yaml": GOOD, "b.json": "BASELINE:busbw_GBps=\"fast\""},
                            ["check", "s.yaml", "--baseline", "b.json"], ["b.json: busbw_GBps: expected a number or null"]),
    "update_over_a_damaged_baseline": ({"s.yaml": GOOD, "b.json": "BASELINE:trials=\"three\""},
                                       ["check", "s.yaml", "--baseline", "b.json", "--update"],
                                       ["b.json: trials: expected a whole number", "--update keeps the trial count"]),
    "update_over_a_text_file": ({"s.yaml": GOOD}, ["check", "s.yaml", "--baseline", "notes.txt", "--update"],
                                ["notes.txt: expected a baseline written by fabricsim check --update",
                                 "remove the file"]),
}


def _baseline(edit: str) -> str:
    """A well-formed baseline of 3 trials with one key replaced: 'BASELINE:key=<JSON>'."""
    key, _, value = edit.removeprefix("BASELINE:").partition("=")
    baseline = {"scenario": "bad", "seed": 0, "trials": 3, "failed_trials": 0, "workload_trials": 3,
                "latency_us": {key: 1.0 for key in ("min", "mean", "p50", "p90", "p99", "p999", "max")},
                "busbw_GBps": 1.0, "scenario_sha256": "0" * 64, "scenario_shape": {}, "failed_trial_indices": [],
                "trial_latency_ps": [1, 2, 3]}
    return json.dumps(baseline | {key: json.loads(value)})


def test_the_corpus_covers_every_category():
    assert len(CASES) >= 60


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_line_exit_2_and_nothing_written(name, tmp_path, monkeypatch, capsys):
    files, argv, expected = CASES[name]
    root = tmp_path / "work"
    root.mkdir()
    workspace(root)
    out = root / "out"  # a result folder of an earlier run: replaceable, so only the bad input stops it
    out.mkdir()
    (out / "summary.json").write_text("{\"decoy\": true}\n")
    (out / MARKER).write_text(json.dumps({"written_by": "fabricsim", "files": ["summary.json"]}))
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str) and content.startswith("BASELINE:"):
            content = _baseline(content)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    monkeypatch.chdir(root)
    before = snapshot(tmp_path)
    writes_to_out = argv[0] in ("run", "sweep", "compare") and not {"-o", "--output"} & set(argv)
    assert main(argv + (["--output", "out"] if writes_to_out else [])) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("fabricsim: "), captured.err
    for words in expected:
        assert words in lines[0], lines[0]
    assert "Traceback" not in captured.err and "hunter2" not in captured.err and captured.out == ""
    assert snapshot(tmp_path) == before
