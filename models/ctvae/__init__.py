"""Causal transitions on a VQ-VAE (Gendron, Witbrock, Dobbie, "Disentanglement of Latent
Representations via Sparse Causal Interventions", IJCAI 2023, arXiv 2302.00869).

>>> from models.ctvae import CTVAE, train_ctvae, retrieve, factor_grid, build_pairs
"""

from .grids import GRID_NAMES, FactorGrid, GridName, factor_grid
from .model import CTVAE, LossWeights
from .pairs import PairSet, action_names, build_pairs, parse_action, undirected
from .quantizer import MultiQuantizer, Quantized
from .retrieval import action_distances, action_probs, retrieval_accuracy, retrieve
from .runio import is_ctvae_run, load_run, save_run
from .train import TrainResult, run_pairs, train_ctvae
from .transition import CausalTransition, straight_through_bernoulli
from .vqvae import VQVAE

__all__ = [
    "CTVAE",
    "GRID_NAMES",
    "VQVAE",
    "CausalTransition",
    "FactorGrid",
    "GridName",
    "LossWeights",
    "MultiQuantizer",
    "PairSet",
    "Quantized",
    "TrainResult",
    "action_distances",
    "action_names",
    "action_probs",
    "build_pairs",
    "factor_grid",
    "is_ctvae_run",
    "load_run",
    "parse_action",
    "retrieval_accuracy",
    "retrieve",
    "run_pairs",
    "save_run",
    "straight_through_bernoulli",
    "train_ctvae",
    "undirected",
]
