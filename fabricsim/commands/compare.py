"""``fabricsim compare A.yaml B.yaml [C.yaml ...] [-o DIR] [--trials N]``, or one scenario with a
``matrix:``: run every variant (or reuse a result folder of the same resolved scenario and seed),
then write compare.csv, compare.md and the comparison pictures, and print the table.

Fresh runs are kept in results/runs/<name>-<hash>/, so a second comparison reuses them; a result
folder written by ``fabricsim run`` (results/<name>/) is reused too when it matches.
"""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path

from fabricsim.commands.common import (EXIT_OK, add_scenario_arguments, default_result_dir, run_records,
                                      scenario_overrides)
from fabricsim.compare import compare_samples, format_table, write_comparison
from fabricsim.config import ScenarioError
from fabricsim.matrix import Variant, load_variants
from fabricsim.sample import Sample, identity, read_sample, run_sample, sha256_of

RUNS_DIR = Path("results") / "runs"


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("compare", help="put fabrics side by side: tables and pictures")
    add_scenario_arguments(parser, nargs="+")
    parser.add_argument("-o", "--output", metavar="DIR",
                        help="comparison folder (default results/compare/<names>)")
    parser.set_defaults(handler=command_compare)


def command_compare(args: argparse.Namespace) -> int:
    variants = load_variants(args.scenario, scenario_overrides(args))
    if len(variants) < 2:
        raise ScenarioError(f"{args.scenario[0]}: matrix: expected two or more scenarios to compare, "
                            "or one scenario with a matrix: of overrides")
    names = list(dict.fromkeys(variant.scenario.name for variant in variants))
    out_dir = Path(args.output or Path("results") / "compare" / "_vs_".join(names))
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / "compare.csv").exists():
        raise ScenarioError(f"-o {out_dir}: expected a new folder or an earlier comparison's, "
                            "got a folder of other files (it would be replaced)")
    samples = [_sample(variant, args) for variant in variants]
    rows = compare_samples(samples)
    collectives = dict.fromkeys(f"{s.summary['collective']['op']} ({s.summary['collective']['algorithm']}), "
                                f"{s.summary['collective']['ranks']} ranks" for s in samples)
    write_comparison(out_dir, samples, rows, f"fabric comparison: {', '.join(names)}", "; ".join(collectives))
    print(format_table(rows))
    print(f"results: {out_dir}/")
    return EXIT_OK


def _sample(variant: Variant, args: argparse.Namespace) -> Sample:
    """The variant's sample from a matching result folder on disk, or from a fresh run."""
    scenario = variant.scenario
    run_dir = RUNS_DIR / f"{scenario.name}-{sha256_of(identity(scenario.resolved()))[:12]}"
    for candidate in (default_result_dir(scenario), run_dir):
        sample = read_sample(candidate, scenario, variant.label)
        if sample is not None:
            print(f"{variant.label}: reusing {candidate}/")
            return sample
    print(f"{variant.label}: running into {run_dir}/")
    run = partial(run_records, args=args, source=variant.source)
    return run_sample(scenario, variant.source, variant.label, run, run_dir)
