"""Scenario: the validated, frozen description of one experiment, loaded from YAML.

Every value is checked once here; everything downstream trusts it. Quantities are written with units
in YAML ("100Gbps", "600ns", "64MiB") and held in base units (bits/s, picoseconds, bytes) under names
that say so. Unknown keys are errors. ``load_scenario`` applies ``--set key.path=value`` overrides
before validation, and any failure becomes one ``ScenarioError`` line naming the file, the key path
and what was expected.
"""

from fabricsim.config.base import Bytes, KeyedValueError, RateBps, ScenarioError, Spec, TimePs
from fabricsim.config.fabric import (
    ClosSpec, DcqcnSpec, EcnSpec, FabricSpec, LinkSpec, NicSpec, PacketSpec, PfcSpec, SwitchSpec,
)
from fabricsim.config.collective import CollectiveSpec
from fabricsim.config.workload import (
    AttentionSpec, Conv2dSpec, DTYPE_BYTES, Dtype, EmbeddingSpec, LAYER_TYPES, LayerSpec, LinearSpec,
    MlpSpec, ModelSpec, NormSpec, ParallelismSpec, TensorSpec, TransformerSpec, WorkloadSpec,
)
from fabricsim.config.impairments import (
    BackgroundSpec, DistributionSpec, FailureSpec, ImpairmentsSpec, LossSpec,
)
from fabricsim.config.scenario import OutputSpec, Scenario
from fabricsim.config.loading import load_scenario, load_transformer, validate_scenario

__all__ = [
    'Bytes', 'KeyedValueError', 'RateBps', 'ScenarioError', 'Spec', 'TimePs', 'ClosSpec', 'DcqcnSpec',
    'EcnSpec', 'FabricSpec', 'LinkSpec', 'NicSpec', 'PacketSpec', 'PfcSpec', 'SwitchSpec',
    'CollectiveSpec', 'AttentionSpec', 'Conv2dSpec', 'DTYPE_BYTES', 'Dtype', 'EmbeddingSpec',
    'LAYER_TYPES', 'LayerSpec', 'LinearSpec', 'MlpSpec', 'ModelSpec', 'NormSpec', 'ParallelismSpec',
    'TensorSpec', 'TransformerSpec', 'WorkloadSpec', 'BackgroundSpec', 'DistributionSpec',
    'FailureSpec', 'ImpairmentsSpec', 'LossSpec', 'OutputSpec', 'Scenario', 'load_scenario',
    'load_transformer', 'validate_scenario',
]
