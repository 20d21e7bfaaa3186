"""``fabricsim check SCENARIO [SCENARIO ...] [--baseline FILE] [--tolerance p50=2%,p99=5%] [--stat] [--update]``:
run each scenario and hold its percentiles to its baseline (results/baselines/<name>.json).

Exit 0 when every scenario is within its baseline, 1 when one regressed, improved beyond its
tolerance or changed shape since its baseline was written, 2 for bad input (a missing baseline
included). Without --trials a check runs the baseline's trial count. ``--update`` writes the
baseline from a fresh run instead of checking, keeping the old baseline's trial count unless
--trials says otherwise: ``fabricsim check scenarios/*.yaml --update`` re-blesses them all.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

import yaml

from fabricsim.commands.common import (EXIT_BAD_INPUT, EXIT_CHECK_FAILED, EXIT_OK, add_scenario_arguments,
                                      load_checked, run_records)
from fabricsim.config import Scenario, ScenarioError
from fabricsim.config.matrix import yaml_text
from fabricsim.output.result_folder import staged_folder, unwritable

_KEYS_SHOWN = 8
CHANGED_DIR = Path("results") / "check"


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("check", help="hold scenarios' latency percentiles to their baselines")
    add_scenario_arguments(parser, nargs="+")
    parser.add_argument("--baseline", metavar="FILE", help="baseline file (one scenario only; "
                                                           "default results/baselines/<name>.json)")
    parser.add_argument("--tolerance", type=_tolerances, metavar="p50=2%,p99=5%",
                        help="relative tolerances of the metrics named (default: exact)")
    parser.add_argument("--stat", action="store_true",
                        help="compare independent samples (KS test, bootstrap on p99); seeds may differ")
    parser.add_argument("--update", action="store_true", help="run and write the baseline instead of checking")
    parser.set_defaults(handler=command_check)


def command_check(args: argparse.Namespace) -> int:
    if args.baseline and len(args.scenario) > 1:
        raise ScenarioError(f"--baseline {args.baseline}: expected one scenario with it, got {len(args.scenario)}")
    codes = []
    for path in args.scenario:
        try:
            codes.append(_check_one(path, args))
        except ScenarioError as error:
            print(f"fabricsim: {error}", file=sys.stderr)
            codes.append(EXIT_BAD_INPUT)
    return EXIT_BAD_INPUT if EXIT_BAD_INPUT in codes else max(codes)


def _check_one(path: str, args: argparse.Namespace) -> int:
    from fabricsim.output.baseline import (baseline_path, check_exact, check_stat, format_check, make_baseline,
                                           read_baseline, scenario_shape, write_baseline)
    from fabricsim.output.sample import run_sample, sha256_of

    scenario = load_checked(path, args)
    baseline_file = Path(args.baseline) if args.baseline else baseline_path(scenario)
    run = partial(run_records, args=args, source=path)
    baseline = None if args.update and not baseline_file.exists() else read_baseline(baseline_file, args.update)
    if baseline is None and (problem := unwritable(baseline_file)):
        raise ScenarioError(f"--baseline {baseline_file}: expected a path a baseline can be written to, got {problem}")
    if args.trials is None and baseline is not None and baseline["workload_trials"] is not None:
        scenario = load_checked(path, args, (f"workload.trials={baseline['workload_trials']}",))
    if args.update:
        sample = run_sample(scenario, path, scenario.name, run)
        write_baseline(baseline_file, make_baseline(scenario, sample))
        print(f"{scenario.name}: baseline of {sample.summary['trials']} trials written to {baseline_file}")
        return EXIT_OK
    if sha256_of(scenario_shape(scenario)) != baseline["scenario_sha256"]:
        _report_changed(path, scenario, baseline, baseline_file)
        return EXIT_CHECK_FAILED
    if not args.stat and (scenario.seed, scenario.workload.trials) != (baseline["seed"], baseline["workload_trials"]):
        raise ScenarioError(f"{path}: seed, workload.trials: expected the baseline's seed {baseline['seed']} and "
                            f"{baseline['trials']} trials for an exact check, got seed {scenario.seed} and "
                            f"workload.trials {scenario.workload.trials}; --stat compares samples of other "
                            "seeds and sizes, --update re-blesses")
    now = run_sample(scenario, path, "now", run)
    result = (check_stat if args.stat else check_exact)(baseline, now, args.tolerance)
    if result.passed and result.mode == "exact":
        print(f"{scenario.name}: ok, {now.summary['trials']} trials identical to {baseline_file}")
        return EXIT_OK
    title = (f"{scenario.name}: {result.mode} check of {now.summary['trials']} trials (seed {scenario.seed}) "
             f"against {baseline_file} ({baseline['trials']} trials, seed {baseline['seed']})")
    print(format_check(result, title))
    if result.passed:
        print(f"{scenario.name}: ok")
        return EXIT_OK
    verdicts = [f"{m.label} {m.status}" for m in result.metrics if m.status in ("regressed", "improved")]
    print(f"{scenario.name}: FAILED ({', '.join(verdicts) or 'trials differ'}). "
          f"If intended, re-bless: fabricsim check {path} --update")
    return EXIT_CHECK_FAILED


def _report_changed(path: str, scenario: Scenario, baseline: dict, baseline_file: Path) -> None:
    """What changed since the baseline, key by key, and the comparison that shows what it does: the
    baseline's scenario is written for it into a result folder of its own (results/check/<name>/)."""
    from fabricsim.output.baseline import baseline_scenario, changed_keys

    changes = changed_keys(baseline, scenario)
    print(f"{scenario.name}: CHANGED since its baseline {baseline_file} was written; not compared:")
    for key, (old, new) in list(changes.items())[:_KEYS_SHOWN]:
        old_text, new_text = ("(none)" if value is None else yaml_text(value) for value in (old, new))
        print(f"  {key}: {old_text} -> {new_text}")
    if len(changes) > _KEYS_SHOWN:
        print(f"  and {len(changes) - _KEYS_SHOWN} more")
    if not changes:
        print("  (the scenario hash differs)")
    old_file = CHANGED_DIR / scenario.name / "baseline.yaml"
    try:
        with staged_folder(old_file.parent, "results/check") as stage:
            (stage / old_file.name).write_text(yaml.safe_dump(baseline_scenario(baseline), sort_keys=False))
    except ScenarioError as error:  # a folder of the user's there: leave it, say why
        print(f"the baseline's scenario was not written: {error}")
    else:
        print(f"to see the difference: fabricsim compare {old_file} {path} "
              f"--seed {baseline['seed']} --trials {baseline['workload_trials'] or baseline['trials']}")
    print(f"if intended, re-bless: fabricsim check {path} --update")


def _tolerances(text: str) -> dict[str, float]:
    from fabricsim.output.baseline import parse_tolerances

    try:
        return parse_tolerances(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
