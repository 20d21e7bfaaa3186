"""``fabricsim calibrate LOG... --scenario S [-o PRESET] [--holdout K]``: fit the scenario's link
classes (NVLink, PCIe, NIC: bandwidth and latency) to nccl-tests logs of the user's cluster, print the
fit and its error on the sizes held out, and write the fitted values as a preset file that scenarios
name with ``fabric: {preset_file: PRESET}`` (fabricsim/formats/calibrate.py says how).

Every log must measure the scenario's collective on its rank count; the logs' rows are pooled.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from fabricsim.commands.common import EXIT_OK, positive_int, refuse_foreign_file, write_file
from fabricsim.config import ScenarioError, load_scenario
from fabricsim.formats.measured import format_errors, measured_run, regime_summary
from fabricsim.formats.nccl_tests_log import MeasuredRun

if TYPE_CHECKING:
    from fabricsim.formats.calibrate import Calibration

PRESET_HEADER = "# fabricsim calibrate"


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("calibrate", help="fit a scenario's links to nccl-tests logs; write a preset file")
    parser.add_argument("logs", nargs="+", metavar="LOG", help="nccl-tests output: text or -J JSON")
    parser.add_argument("--scenario", required=True, metavar="S", help="scenario YAML file whose fabric is fitted")
    parser.add_argument("-o", "--output", metavar="PRESET",
                        help="preset file to write (default <scenario name>.calibrated.yaml beside the scenario)")
    parser.add_argument("--holdout", type=positive_int, default=3, metavar="K",
                        help="hold out the second size and every K-th after it (default 3)")
    parser.set_defaults(handler=command_calibrate)


def command_calibrate(args: argparse.Namespace) -> int:
    from fabricsim.formats.calibrate import calibrate

    if args.holdout < 2:
        raise ScenarioError(f"--holdout: expected at least 2 (every K-th size held out), got {args.holdout}")
    scenario = load_scenario(args.scenario)
    out = Path(args.output or Path(args.scenario).with_name(f"{scenario.name}.calibrated.yaml"))
    refuse_foreign_file(out, PRESET_HEADER, "-o")
    runs = [measured_run(log, scenario, args.scenario) for log in args.logs]
    dtypes = {row.dtype for run in runs for row in run.rows}
    if len(dtypes) > 1:
        raise ScenarioError(f"{args.logs[0]}: expected one element type across the logs, got {sorted(dtypes)}")
    pooled = MeasuredRun(", ".join(run.source for run in runs), scenario.collective.op, scenario.fabric.gpus,
                         tuple({row.size_bytes: row for run in runs for row in run.rows}.values()))
    result = calibrate(scenario, args.scenario, pooled, args.holdout)
    print(format_calibration(result, scenario.name, pooled))
    write_file(out, preset_text(result, args.logs, args.scenario), "-o")
    print(f"preset: {out} (name it in a scenario: fabric: {{preset_file: {out.name}}})")
    own = _own_keys(args.scenario, result.preset())
    if own:
        print(f"note: the scenario sets these keys itself, and a scenario's own keys win over a preset file: "
              f"{', '.join(own)}")
    return EXIT_OK


def _own_keys(scenario_path: str, preset: dict[str, dict[str, str]]) -> list[str]:
    """The preset's keys that the scenario file writes itself (fabric.SECTION.KEY)."""
    fabric = yaml.safe_load(Path(scenario_path).read_text()).get("fabric") or {}
    return [f"fabric.{section}.{key}" for section, keys in preset.items() for key in keys
            if isinstance(fabric.get(section), dict) and key in fabric[section]]


def format_calibration(result: Calibration, name: str, run: MeasuredRun) -> str:
    lines = [f"calibrate {name}: {len(run.rows)} sizes from {run.source}, "
             f"{len(result.fit_errors)} fitted, {len(result.holdout_errors)} held out"]
    for parameter, value in result.fitted.items():
        note = "  (raised: the fit must not make it the bottleneck)" if parameter in result.raised else ""
        lines.append(f"  {parameter.name:<18} {parameter.text(result.start[parameter]):>20} -> "
                     f"{parameter.text(value)}{note}")
    if result.held:
        lines.append("  held at the scenario's values (the measurements do not tell them apart): "
                     + ", ".join(parameter.name for parameter in result.held))
    lines.append(format_errors(result.holdout_errors, "calibrated simulation, held-out sizes"))
    lines.append("fit on the other sizes: " + "; ".join(regime_summary(result.fit_errors)))
    return "\n".join(lines)


def preset_text(result: Calibration, logs: list[str], scenario: str) -> str:
    header = [f"{PRESET_HEADER} {' '.join(logs)} --scenario {scenario}",
              "# error on the held-out sizes: " + "; ".join(regime_summary(result.holdout_errors)),
              "# Fabric keys laid under the scenario's own: fabric: {preset_file: <this file>}"]
    return "\n".join(header) + "\n" + yaml.safe_dump(result.preset(), sort_keys=False)
