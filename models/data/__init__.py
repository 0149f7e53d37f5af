"""Offline causal-disentanglement image sets (CausalVAE's Pendulum and Flow), rendered from
their ground-truth factors, with ground-truth counterfactual renders of any intervention.

>>> from models.data import load_dataset, counterfactual_pendulum
"""

from ._cache import cache_root
from ._canvas import area_weights
from .counterfactual import counterfactual_factors
from .flow import (
    FLOW_FACTORS,
    FLOW_GRAPH,
    FLOW_JET_SEED,
    FLOW_SPLIT_SEED,
    counterfactual_flow,
    draw_flow,
    flow_factors,
    flow_jet_noise,
    flow_scenes,
    flow_test_mask,
    render_flow,
)
from .imageset import CACHE_VERSION, DatasetName, ImageSet, Split, load_dataset
from .pendulum import (
    PENDULUM_FACTORS,
    PENDULUM_GRAPH,
    counterfactual_pendulum,
    draw_pendulum,
    pendulum_factors,
    pendulum_scenes,
    pendulum_test_mask,
    render_pendulum,
)

__all__ = [
    "area_weights",
    "CACHE_VERSION",
    "FLOW_FACTORS",
    "FLOW_GRAPH",
    "FLOW_JET_SEED",
    "FLOW_SPLIT_SEED",
    "PENDULUM_FACTORS",
    "PENDULUM_GRAPH",
    "DatasetName",
    "ImageSet",
    "Split",
    "cache_root",
    "counterfactual_factors",
    "counterfactual_flow",
    "counterfactual_pendulum",
    "draw_flow",
    "draw_pendulum",
    "flow_factors",
    "flow_jet_noise",
    "flow_scenes",
    "flow_test_mask",
    "load_dataset",
    "pendulum_factors",
    "pendulum_scenes",
    "pendulum_test_mask",
    "render_flow",
    "render_pendulum",
]

from .quad import (  # noqa: E402 - the context module's quad concept images
    QUAD_HELDOUT_CONTEXTS,
    QUAD_TRAIN_CONTEXTS,
    QuadData,
    QuadSet,
    draw_quad,
    load_quad,
)

__all__ += [
    "QUAD_HELDOUT_CONTEXTS",
    "QUAD_TRAIN_CONTEXTS",
    "QuadData",
    "QuadSet",
    "draw_quad",
    "load_quad",
]

from .shapes import (  # noqa: E402 - the CT-VAE's procedural shapes set
    SHAPES_FACTORS,
    SHAPES_GRAPH,
    SHAPES_VALUES,
    ShapesSet,
    imbalanced_probs,
    load_shapes,
    render_shapes,
    shapes_scenes,
)

__all__ += [
    "SHAPES_FACTORS",
    "SHAPES_GRAPH",
    "SHAPES_VALUES",
    "ShapesSet",
    "imbalanced_probs",
    "load_shapes",
    "render_shapes",
    "shapes_scenes",
]
