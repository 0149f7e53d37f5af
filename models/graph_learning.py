"""Learning the factor graph of a CauF-VAE prior: gated causal flows under the NOTEARS constraint.

Each factor ``z_i`` gets a flow mechanism whose conditioner sees *every* factor, each multiplied
by a binary mask ``M[j, i] ~ Bernoulli(G[j, i])`` with gates ``G = sigmoid(logits)`` (zero
diagonal): the prior density is ``prod_i p_i(z_i | M[:, i] * z)``, DCDI's construction
(Brouillard et al., NeurIPS 2020). The product is a normalised density exactly when the masks
form a DAG, which the trace-exponential constraint
``h(G) = tr(exp(G * G)) - d = 0`` of NOTEARS (Zheng et al. 2018) enforces through an augmented
Lagrangian ``lambda h + rho/2 h^2`` whose multipliers grow between epochs (NOTEARS, Alg. 1).
An L1 term on the gates prices each edge, so edges that buy no likelihood close.

When the search ends, :meth:`GraphLearner.dag` turns the gates into a DAG (keep an edge when its
gate exceeds the threshold, strongest first, skipping any edge that would close a cycle) and the
model swaps in an ordinary :class:`scm.SCM` flow prior over that graph.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import networkx as nx
import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from torch import Tensor, nn

from models.notears import acyclicity
from scm.mechanisms import FlowMechanism

MAX_RHO = 1e6
TEMPERATURE = 1.0
_NO_SHAPE = torch.Size()


class GraphLearner(nn.Module):
    """Gated flow mechanisms over all factors, with their gates as a learnable adjacency.

    Args:
        dims: ``{factor: width}`` in a fixed order (the columns of the stacked factors).
        bins, hidden: spline bins and conditioner widths of each factor's flow.
        sparsity: L1 weight per gate (nats per row).
        init_logit: initial gate logit (``0``: every edge starts at probability 1/2).

    Shapes: stacked factors are ``(n, sum(dims))``.
    """

    def __init__(
        self,
        dims: Mapping[str, int],
        *,
        bins: int = 8,
        hidden: Sequence[int] = (32, 32),
        sparsity: float = 0.02,
        init_logit: float = 0.0,
    ) -> None:
        super().__init__()
        if sparsity < 0:
            raise ValueError(f"sparsity must be >= 0, got {sparsity!r}")
        self.dims = dict(dims)
        self.sparsity = float(sparsity)
        k, width = len(self.dims), sum(self.dims.values())
        self.logits = nn.Parameter(torch.full((k, k), float(init_logit)))
        self.mechanisms = nn.ModuleList(
            FlowMechanism(d, width, bins=bins, hidden=tuple(hidden)) for d in self.dims.values()
        )
        # Which factor each stacked coordinate belongs to: expands (k, k) gates to (width, k).
        owner = torch.repeat_interleave(torch.arange(k), torch.tensor(list(self.dims.values())))
        self.register_buffer("owner", owner)
        self.register_buffer("lagrange", torch.tensor(0.0))
        self.register_buffer("rho", torch.tensor(1.0))
        self.register_buffer("last_h", torch.tensor(float("inf")))

    @property
    def names(self) -> list[str]:
        return list(self.dims)

    def adjacency(self) -> Tensor:
        """Gates ``(k, k)``: ``G[j, i]`` weighs the edge ``factor j -> factor i``; zero diagonal."""
        k = self.logits.shape[0]
        return torch.sigmoid(self.logits) * (1.0 - torch.eye(k, dtype=self.logits.dtype))

    def masks(self, n: int) -> Tensor:
        """Binary parent masks ``(n, k, k)``, one per row.

        Training: ``M ~ Bernoulli(G)`` by the straight-through Gumbel-sigmoid estimator
        (Jang et al. 2017), as in DCDI (Brouillard et al., "Differentiable causal discovery
        from interventional data", NeurIPS 2020, eq. 9): masks are 0/1, so a conditioner cannot
        undo a small gate by growing its weights, and the gates' gradients flow through the
        relaxation. Evaluation: the gates rounded at 1/2.
        """
        k = self.logits.shape[0]
        off = 1.0 - torch.eye(k, dtype=self.logits.dtype)
        if not self.training:
            return ((torch.sigmoid(self.logits) > 0.5).to(self.logits.dtype) * off).expand(n, k, k)
        u = self.logits.new_empty(n, k, k).uniform_().clamp(1e-6, 1 - 1e-6)
        soft = torch.sigmoid((self.logits + u.log() - (-u).log1p()) / TEMPERATURE)
        hard = (soft > 0.5).to(soft.dtype)
        return (hard + soft - soft.detach()) * off

    def _contexts(self, z: Tensor) -> list[Tensor]:
        gates = self.masks(z.shape[0])[:, self.owner]  # (n, width, k): column i gates factor i
        return [z * gates[..., i] for i in range(len(self.dims))]

    def _split(self, z: Tensor) -> list[Tensor]:
        return list(z.split(list(self.dims.values()), dim=-1))

    def log_prob(self, z: Tensor) -> Tensor:
        """``sum_i log p_i(z_i | G[:, i] * z)``, shape ``(n,)``, for stacked ``z (n, width)``."""
        parts = self._split(z)
        contexts = self._contexts(z)
        return sum(
            m(c).log_prob(v) for m, c, v in zip(self.mechanisms, contexts, parts, strict=True)
        )

    def sample(self, n: int) -> Tensor:
        """``(n, width)`` draws by fixed-point iteration with the noise held: ``k`` rounds
        reproduce ancestral sampling exactly when the gates form a DAG."""
        like = self.logits
        noise = [like.new_empty(n, d).normal_() for d in self.dims.values()]
        z = like.new_zeros(n, sum(self.dims.values()))
        for _ in range(len(self.dims)):
            contexts = self._contexts(z)
            pairs = zip(self.mechanisms, contexts, noise, strict=True)
            z = torch.cat([m.transform(c)(u) for m, c, u in pairs], -1)
        return z

    def acyclicity(self) -> Tensor:
        """NOTEARS ``h(G)`` of the gates (a scalar, zero iff ``G`` is a DAG)."""
        return acyclicity(self.adjacency())

    def penalty(self) -> Tensor:
        """``lambda h + rho/2 h^2 + sparsity * sum(G)`` (per row of data)."""
        h = self.acyclicity()
        return self.lagrange * h + 0.5 * self.rho * h * h + self.sparsity * self.adjacency().sum()

    @torch.no_grad()
    def update_multipliers(self) -> float:
        """One outer step of the augmented Lagrangian: ``lambda += rho h``; ``rho *= 10`` when
        ``h`` fell by less than a quarter since the last step. Returns ``h``."""
        h = float(self.acyclicity())
        self.lagrange += self.rho * h
        if h > 0.25 * float(self.last_h):
            self.rho.copy_(torch.clamp(self.rho * 10.0, max=MAX_RHO))
        self.last_h.fill_(h)
        return h

    def dag(self, threshold: float = 0.5) -> dict[str, list[str]]:
        """The learned DAG ``{child: [parents]}``: gates above ``threshold``, strongest first,
        skipping an edge that would close a directed cycle."""
        gates = self.adjacency().detach()
        names = self.names
        graph = nx.DiGraph()
        graph.add_nodes_from(names)
        order = sorted(
            ((float(gates[j, i]), j, i) for j in range(len(names)) for i in range(len(names))
             if i != j and float(gates[j, i]) > threshold),
            reverse=True,
        )
        for _, j, i in order:
            graph.add_edge(names[j], names[i])
            if not nx.is_directed_acyclic_graph(graph):
                graph.remove_edge(names[j], names[i])
        return {name: sorted(graph.predecessors(name), key=names.index) for name in names}


class GatedFlowPrior(dist.TorchDistribution):
    """The learner's joint density over stacked factors as a Pyro distribution.

    Batch ``(n,)``, event ``(width,)``; ``log_prob`` is :meth:`GraphLearner.log_prob` and
    ``sample`` its fixed-point sampler (not reparameterised: in the ELBO the factors come from
    the guide).
    """

    arg_constraints: dict[str, constraints.Constraint] = {}
    support = constraints.real_vector

    def __init__(self, learner: GraphLearner, n: int, *, validate_args: bool | None = None) -> None:
        self.learner = learner
        width = sum(learner.dims.values())
        super().__init__(torch.Size([n]), torch.Size([width]), validate_args=validate_args)

    def log_prob(self, value: Tensor) -> Tensor:
        return self.learner.log_prob(value)

    def sample(self, sample_shape: torch.Size = _NO_SHAPE) -> Tensor:
        if sample_shape:
            raise ValueError("GatedFlowPrior draws one batch at a time; sample_shape must be ()")
        with torch.no_grad():
            return self.learner.sample(self.batch_shape[0])
