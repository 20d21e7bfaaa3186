"""Fabric: the cluster's devices and directed links as a graph, its topology builders and its routing.

No behaviour lives here: the engine reads link bandwidths and latencies, routing reads the graph.
"""

from fabricsim.fabric.graph import Device, Fabric, Link
from fabricsim.fabric.routing import Router
from fabricsim.fabric.topology import build_fabric

__all__ = ["Device", "Fabric", "Link", "Router", "build_fabric"]
