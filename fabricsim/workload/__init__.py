"""Workload: a model and a parallelism rule in, the collective calls of every trial out.

``plan`` picks the rule, ``kccb`` holds the tutorial's rules for layer-list models, ``megatron`` the
transformer training step, ``placement`` the rank layout, and ``trial`` the data they produce.
"""

from fabricsim.workload.plan import plan_jobs, plan_workload
from fabricsim.workload.trial import Call, Trial, WorkloadPlan, batch_count

__all__ = ["Call", "Trial", "WorkloadPlan", "batch_count", "plan_jobs", "plan_workload"]
