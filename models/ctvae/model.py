"""CT-VAE: a VQ-VAE whose code slots are causal variables linked by a causal-transition layer.

``forward_action(x, a)`` encodes ``x``, applies action ``a`` to its codes (sparse intervention,
propagation over the learned graph), takes each slot's most likely code and decodes it
(Gendron, Witbrock, Dobbie, IJCAI 2023, Sec. 3).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .transition import CausalTransition
from .vqvae import VQVAE


@dataclass
class LossWeights:
    """Weights of the loss terms: pixel reconstruction, VQ commitment, transition
    cross-entropy, intervention-mask sparsity, graph (edge) sparsity."""

    recon: float = 1.0
    vq: float = 0.25
    transition: float = 1.0
    mask: float = 0.005
    graph: float = 0.005


class CTVAE(nn.Module):
    """The VQ-VAE and its transition layer, with the action vocabulary.

    Args:
        actions: action names, index 0 ``"none"`` (see :func:`models.ctvae.pairs.action_names`).
        image_size, downsample, n_codebooks, n_codes, code_dim, channels: the VQ-VAE.
        hidden, layers, heads, tau: the transition layer.
    """

    def __init__(
        self,
        actions: tuple[str, ...] | list[str],
        *,
        image_size: int = 32,
        downsample: int = 8,
        n_codebooks: int = 2,
        n_codes: int = 32,
        code_dim: int = 8,
        channels: int = 32,
        hidden: int = 64,
        layers: int = 2,
        heads: int = 2,
        tau: float = 1.0,
    ) -> None:
        super().__init__()
        if len(actions) < 2 or actions[0] != "none":
            raise ValueError(f"actions must start with 'none' and name at least one action; "
                             f"got {actions!r}")
        self.actions = tuple(actions)
        self._config = {
            "actions": list(actions), "image_size": image_size, "downsample": downsample,
            "n_codebooks": n_codebooks, "n_codes": n_codes, "code_dim": code_dim,
            "channels": channels, "hidden": hidden, "layers": layers, "heads": heads, "tau": tau,
        }
        self.vq = VQVAE(image_size=image_size, downsample=downsample, n_codebooks=n_codebooks,
                        n_codes=n_codes, code_dim=code_dim, channels=channels)
        self.transition = CausalTransition(
            self.vq.n_nodes, n_codebooks, n_codes, code_dim, len(actions) - 1,
            hidden=hidden, layers=layers, heads=heads, tau=tau,
        )

    def config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-able): ``CTVAE(**config)`` rebuilds the architecture."""
        return dict(self._config)

    def action_index(self, action: str | int | Tensor, n: int) -> Tensor:
        """Actions as an int64 tensor ``(n,)`` from a name, an index or a tensor."""
        if isinstance(action, str):
            if action not in self.actions:
                raise ValueError(f"action must be one of {self.actions}; got {action!r}")
            return torch.full((n,), self.actions.index(action), dtype=torch.long)
        return torch.as_tensor(action, dtype=torch.long).expand(n).clone()

    def transition_logits(self, codes: Tensor, actions: Tensor) -> Tensor:
        """Logits ``(B, N, K)`` of post-action codes from codes ``(B, N)`` and actions ``(B,)``."""
        vectors = self.vq.node_vectors(codes).detach()
        return self.transition(vectors, codes, actions)

    def transition_terms(
        self, codes_x: Tensor, actions: Tensor, codes_y: Tensor
    ) -> dict[str, Tensor]:
        """``{"transition", "mask", "graph"}``: mean cross-entropy of predicted vs actual
        codes of ``y``, mean intervention probability of the real actions, mean edge
        probability."""
        logits = self.transition_logits(codes_x, actions)
        ce = nn.functional.cross_entropy(logits.flatten(0, 1), codes_y.flatten())
        return {
            "transition": ce,
            "mask": self.transition.mask_probs()[1:].mean(),
            "graph": self.transition.edge_probs().nan_to_num(0.0).mean(),
        }

    def joint_terms(self, x: Tensor, actions: Tensor, y: Tensor) -> dict[str, Tensor]:
        """All loss terms on image pairs: ``recon`` and ``vq`` (commitment) on ``x`` and ``y``,
        and :meth:`transition_terms` on their live codes."""
        qx, qy = self.vq.encode(x), self.vq.encode(y)
        recon = self.vq.recon_error(qx.z_q, x) + self.vq.recon_error(qy.z_q, y)
        terms = self.transition_terms(qx.codes.flatten(1), actions, qy.codes.flatten(1))
        return {"recon": recon / 2, "vq": (qx.commitment + qy.commitment) / 2, **terms}

    @staticmethod
    def weighted(terms: dict[str, Tensor], weights: LossWeights) -> Tensor:
        """``sum_k weights.k * terms[k]`` over the terms present."""
        w = asdict(weights)
        return sum(w[k] * v for k, v in terms.items())  # type: ignore[return-value]

    @torch.no_grad()
    def predict_codes(self, codes: Tensor, actions: Tensor) -> Tensor:
        """Most likely post-action codes ``(B, N)`` (deterministic structure: call in eval)."""
        return self.transition_logits(codes, actions).argmax(-1)

    @torch.no_grad()
    def forward_action(self, images: Tensor, action: str | int | Tensor) -> Tensor:
        """The intervened images ``(n, 3, H, W)`` (unclamped) of ``images (n, 3, H, W)`` under
        ``action`` (a name such as ``"light+"``, an index, or ``(n,)`` indices)."""
        codes = self.vq.codes(images)
        new = self.predict_codes(codes, self.action_index(action, len(images)))
        return self.vq.decode_codes(new)

    @torch.no_grad()
    def reconstruct(self, images: Tensor) -> Tensor:
        """Decoded codes of ``images``: ``(n, 3, H, W)``."""
        return self.vq.decode_codes(self.vq.codes(images))
