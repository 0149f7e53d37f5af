"""The context module of Markham et al., "Intervening to Learn and Compose Causally
Disentangled Representations" (arXiv 2507.04754), on any black-box VAE.

>>> from models.context import ContextModule, ContextVAE, ConvVAE, TrainConfig, train_run
"""

from .backbone import BlackBox, ConvVAE, load_backbone, save_backbone
from .batches import ContextBatch, context_batches
from .checkpoint import load_run, read_record, save_run
from .graph import concept_graph, score_graph
from .metrics import context_swd, elbo_bpd, evaluate, reconstruction_mse, sliced_wasserstein
from .model import ContextVAE, bits_per_dim, dequantize
from .module import ContextModule
from .moments import init_from_moments, interventional_readout
from .run import DataConfig, generate_grid, pretrain_backbone, train_run
from .train import METHODS, ContextLoss, ContextTrainer, Method, TrainConfig, build_model, fit

__all__ = [
    "METHODS",
    "BlackBox",
    "ContextBatch",
    "ContextLoss",
    "ContextModule",
    "ContextTrainer",
    "ContextVAE",
    "ConvVAE",
    "DataConfig",
    "Method",
    "TrainConfig",
    "bits_per_dim",
    "build_model",
    "concept_graph",
    "context_batches",
    "context_swd",
    "dequantize",
    "elbo_bpd",
    "evaluate",
    "fit",
    "generate_grid",
    "init_from_moments",
    "interventional_readout",
    "load_backbone",
    "load_run",
    "pretrain_backbone",
    "read_record",
    "reconstruction_mse",
    "save_backbone",
    "save_run",
    "score_graph",
    "sliced_wasserstein",
    "train_run",
]
