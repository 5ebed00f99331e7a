"""Building blocks of the potentials.

Every module of the equivariant and invariant models (SE3Potential, GATv2Potential) declares
``irreps_in`` and ``irreps_out`` (scalar ones as ``"Nx0e"``). The Set Transformer blocks of the
A2I Transformer declare none: they act on features of raw coordinates, which are not irreps
(the model is not rotation-invariant by design).
"""

from .attention import EdgeTensorProduct, SE3AttentionLayer
from .embedding import EdgeSphericalHarmonics, SpeciesEmbedding, species_one_hot
from .irreps_tools import hidden_irreps
from .nonlinearity import NormNonlinearity, build_gate
from .product import NodeTensorSquare
from .radial import BesselBasis, PolynomialEnvelope, RadialEmbedding
from .gatv2 import DensityInvariants, GATv2Layer
from .readout import AtomicEnergyReadout, DirectForceHead, PyramidalReadout, ScaleShiftEnergies
from .self_interaction import AttentiveSelfInteraction, build_self_interaction
from .set_transformer import MultiheadAttentionBlock, SetAttentionBlock, SetTransformerEncoder
from .softmax import envelope_softmax

__all__ = [
    "species_one_hot",
    "AtomicEnergyReadout",
    "AttentiveSelfInteraction",
    "BesselBasis",
    "DensityInvariants",
    "DirectForceHead",
    "EdgeSphericalHarmonics",
    "EdgeTensorProduct",
    "GATv2Layer",
    "MultiheadAttentionBlock",
    "NodeTensorSquare",
    "NormNonlinearity",
    "PolynomialEnvelope",
    "PyramidalReadout",
    "RadialEmbedding",
    "SE3AttentionLayer",
    "ScaleShiftEnergies",
    "SetAttentionBlock",
    "SetTransformerEncoder",
    "SpeciesEmbedding",
    "build_gate",
    "build_self_interaction",
    "envelope_softmax",
    "hidden_irreps",
]
