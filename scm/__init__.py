"""Structural causal models as Pyro programs: graphs, mechanisms, queries, known SCMs."""

from scm import zoo
from scm.graph import as_parent_dict
from scm.interventions import Action
from scm.mechanisms import AdditiveNoise, FlowMechanism, LinearGaussian, Mechanism
from scm.scm import SCM, Intervened

__all__ = [
    "SCM",
    "Action",
    "AdditiveNoise",
    "FlowMechanism",
    "Intervened",
    "LinearGaussian",
    "Mechanism",
    "as_parent_dict",
    "zoo",
]
