"""``fabricsim export-fabric SCENARIO -o cluster.yaml``: write the scenario's fabric as an InfraGraph
Infrastructure (YAML, or JSON when the name ends in .json) and its rank order as an InfraGraph
Annotation beside it (``cluster.annotations.yaml``); ``fabric: {infragraph: cluster.yaml,
infragraph_annotations: cluster.annotations.yaml}`` reads them back (fabricsim/fabric/infragraph.py).
It replaces only files it wrote.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

from fabricsim.commands.common import EXIT_OK, refuse_foreign_file, scenario_overrides, write_file
from fabricsim.config import ScenarioError, load_scenario
from fabricsim.config.infragraph_document import INFRAGRAPH_VERSION, InfraGraphError

HEADER = "# fabricsim export-fabric"


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("export-fabric", help="write a scenario's fabric as InfraGraph YAML or JSON")
    parser.add_argument("scenario", help="scenario YAML file")
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="InfraGraph file to write (.yaml or .json)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="override any scenario key (repeatable)")
    parser.set_defaults(handler=command_export_fabric, trials=None, seed=None)


def command_export_fabric(args: argparse.Namespace) -> int:
    from fabricsim.fabric import build_fabric
    from fabricsim.fabric.infragraph import infragraph_of

    scenario = load_scenario(args.scenario, scenario_overrides(args))
    out = Path(args.output)
    annotations_out = out.with_name(f"{out.stem}.annotations{out.suffix}")
    as_json = out.suffix.lower() == ".json"
    for path in (out, annotations_out):
        refuse_foreign_file(path, HEADER, "-o")
    try:
        infrastructure, annotation = infragraph_of(build_fabric(scenario.fabric), scenario.name)
    except InfraGraphError as error:
        raise ScenarioError(f"{args.scenario}: fabric: {error}") from None
    header = f"{HEADER} {args.scenario} (InfraGraph {INFRAGRAPH_VERSION})\n"
    for path, document in ((out, infrastructure), (annotations_out, annotation)):
        write_file(path, json.dumps(document, indent=1) + "\n" if as_json
                   else header + yaml.safe_dump(document, sort_keys=False), "-o")
    print(f"InfraGraph: {out} ({len(infrastructure['edges'])} edges between instances), ranks: {annotations_out}")
    return EXIT_OK
