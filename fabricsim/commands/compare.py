"""``fabricsim compare A.yaml B.yaml [C.yaml ...] [-o DIR] [--trials N]``, or one scenario with a
``matrix:``: run every variant (or reuse a result folder of the same resolved scenario and seed),
then write compare.csv, compare.md and the comparison pictures, and print the table.

Fresh runs are kept in results/runs/<name>-<hash>/ (the hash covers the resolved scenario and the
fabricsim version), so a second comparison reuses them; a result folder written by ``fabricsim run``
(results/<name>/) is reused too when it matches. A folder is reused only when fabricsim's marker is in
it and its files read back whole.
"""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from fabricsim.version import __version__
from fabricsim.commands.common import (EXIT_OK, add_scenario_arguments, default_result_dir, run_records,
                                      scenario_overrides)
from fabricsim.config import Scenario, ScenarioError
from fabricsim.config.matrix import Variant, load_variants
from fabricsim.output.result_folder import check_target

if TYPE_CHECKING:
    from fabricsim.output.sample import Sample

RUNS_DIR = Path("results") / "runs"


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("compare", help="put fabrics side by side: tables and pictures")
    add_scenario_arguments(parser, nargs="+")
    parser.add_argument("-o", "--output", metavar="DIR",
                        help="comparison folder (default results/compare/<names>)")
    parser.set_defaults(handler=command_compare)


def command_compare(args: argparse.Namespace) -> int:
    from fabricsim.output.compare import compare_samples, format_table, write_comparison
    from fabricsim.runner.work_limits import check_work

    variants = load_variants(args.scenario, scenario_overrides(args))
    for variant in variants:
        check_work(variant.scenario, variant.source, args.allow_large)
    if len(variants) < 2:
        raise ScenarioError(f"{args.scenario[0]}: matrix: expected two or more scenarios to compare, "
                            "or one scenario with a matrix: of overrides")
    names = list(dict.fromkeys(variant.scenario.name for variant in variants))
    out_dir = Path(args.output or Path("results") / "compare" / "_vs_".join(names))
    check_target(out_dir, f"-o {args.output}" if args.output else f"{args.scenario[0]}: name",
                 [variant.source for variant in variants])
    stored = [_stored_sample(variant) for variant in variants]
    for variant, found in zip(variants, stored):
        if found is None:
            check_target(_run_dir(variant.scenario), f"{variant.source}: name (the run cache)", [variant.source])
    samples = []
    for variant, found in zip(variants, stored):
        if found is not None:
            print(f"{variant.label}: reusing {found[0]}/")
        samples.append(found[1] if found else _fresh_sample(variant, args))
    rows = compare_samples(samples)
    collectives = dict.fromkeys(f"{s.summary['collective']['op']} ({s.summary['collective']['algorithm']}), "
                                f"{s.summary['collective']['ranks']} ranks" for s in samples)
    write_comparison(out_dir, samples, rows, f"fabric comparison: {', '.join(names)}", "; ".join(collectives))
    print(format_table(rows))
    print(f"results: {out_dir}/")
    return EXIT_OK


def _run_dir(scenario: Scenario) -> Path:
    """The run cache's folder for a scenario: its name, and a hash of its identity and of the version
    of fabricsim that ran it."""
    from fabricsim.output.sample import identity, sha256_of

    key = {"fabricsim_version": __version__, **identity(scenario.resolved())}
    return RUNS_DIR / f"{scenario.name}-{sha256_of(key)[:12]}"


def _stored_sample(variant: Variant) -> tuple[Path, Sample] | None:
    """The variant's sample from a matching result folder on disk (results/<name>/ or the run cache),
    with that folder."""
    from fabricsim.output.sample import read_sample

    for candidate in (default_result_dir(variant.scenario), _run_dir(variant.scenario)):
        sample = read_sample(candidate, variant.scenario, variant.label)
        if sample is not None:
            return candidate, sample
    return None


def _fresh_sample(variant: Variant, args: argparse.Namespace) -> Sample:
    from fabricsim.output.sample import run_sample

    run_dir = _run_dir(variant.scenario)
    print(f"{variant.label}: running into {run_dir}/")
    run = partial(run_records, args=args, source=variant.source)
    return run_sample(variant.scenario, variant.source, variant.label, run, run_dir)
