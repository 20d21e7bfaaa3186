"""Planner: how many tensor-parallel GPUs a model, a device and a link can use.

``tp_cost`` prices each TP degree (seed 001's arithmetic, and a per-step estimate), ``sizing`` gives
seed 000's recommendation with its reason, ``simulate`` replaces the estimated communication time by
a simulated one, and ``plot`` draws time per step against the TP degree.
"""
