"""An InfraGraph document read as the scenario schema needs it: the ``infragraph`` package's graph of it,
and its shape (hosts, GPUs per host), which the fabric section takes as its own ``hosts`` and
``gpus_per_host``. Building the fabric from the graph is ``fabricsim.fabric.infragraph``'s job.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

INFRAGRAPH_VERSION = "3.1.0"  # the schema read and written (pyproject's infragraph extra pins it)


class InfraGraphError(ValueError):
    """A document the infragraph package refuses, or one fabricsim cannot run."""


def _service():
    try:
        from infragraph import Infrastructure
        from infragraph.infragraph_service import InfraGraphService
    except ImportError:
        raise InfraGraphError("expected the infragraph package to read it: pip install -e '.[infragraph]'") from None
    return Infrastructure, InfraGraphService


@lru_cache(maxsize=8)
def _expanded(document_json: str):
    """The package's graph of a document (nodes with type, instance, device; edges with link)."""
    infrastructure_type, service_type = _service()
    service = service_type()
    try:
        service.set_graph(infrastructure_type().deserialize(document_json))
    except Exception as error:  # the package raises its own and plain Python errors alike
        raise InfraGraphError(f"expected a document the infragraph package accepts: {error}") from None
    return service.get_networkx_graph()


def graph_of(document: dict[str, Any]):
    return _expanded(json.dumps(document, sort_keys=True))


def shape(document: dict[str, Any]) -> tuple[int, int]:
    """(hosts, GPUs per host): the device instances holding xpus, and their xpus each."""
    per_host: dict[str, int] = {}
    for node, data in graph_of(document).nodes(data=True):
        if data.get("type") == "xpu":
            per_host[data["composed_device"]] = per_host.get(data["composed_device"], 0) + 1
    if not per_host:
        raise InfraGraphError("expected xpu components (the GPUs), found none")
    counts = set(per_host.values())
    if len(counts) > 1:
        raise InfraGraphError(f"expected every host to hold as many xpus, got {sorted(counts)}")
    return len(per_host), counts.pop()
