"""The scalar flow mechanisms of an SCM evaluated as one batched network, for fitting.

A fully observed SCM's log-likelihood is a sum of one term per node, each with its own
parameters. Evaluated node by node, a training step of a d-node SCM issues d small conditioner
networks, d splines and (with Pyro's per-parameter optimisers) ~10 d optimiser updates; on a CPU
that per-operation overhead, not arithmetic, sets the cost (measured: 23 ms/step for the
4-node pendulum, 84 ms for a 20-node DAG, batch 1024, one thread). :class:`StackedFlows` holds
the same parameters stacked along a leading node axis, so one step is a handful of batched
matrix products whatever d is. It computes exactly the per-node log-densities of
:class:`~scm.mechanisms.flow.FlowMechanism` (``transforms=0``: the default for scalar nodes),
using the same zuko transforms with stacked parameters; :meth:`write_back` copies the trained
slices into the per-node mechanisms, which remain the model that is saved and queried.

Parents enter node k's conditioner through a 0/1 mask over all columns (MADE-style masking,
Germain et al. 2015), so node k's first layer sees exactly its parents.

Savings on top of stacking (same log-densities): the conditioner runs only over the nodes that
have parents (a root's shift and log-scale are a bias); the noise spline gathers its knots with
``torch.take`` (:func:`rqs_call_and_ladj`); and the parameters are one tensor (:attr:`flat`),
not ten (Pyro runs one optimiser per tensor). Same script, interleaved runs, CPU time per epoch
of ``SCM.fit`` (5,000 rows, batch 1,024, one thread, shared machine), before -> after (five
tensors then): pendulum 56-81 -> 44-45 ms, triangle 63-67 -> 35-55 ms, 20-node random DAG
155-203 -> 86-108 ms. One tensor instead of five, and a run's first layer as one matrix
product, with ``"auto"``'s rivals (``bench/flow_conditioner.py`` cases, same seed, fitted
models bit for bit the same): ``SCM.fit`` of the pendulum 10.6 -> 9.4 s, triangle 3.8 -> 3.4 s,
20-node random DAG 21.5 / 22.1 -> 19.4 / 18.9 s. Hidden units laid out rows last (no
transposed copies), the member order by ``index_select`` and activations in place: the 20-node
DAG's training stack with ``"auto"``'s rivals (31 members, batch 1,024), forward and backward
14.3 -> 12.3 ms; its ``SCM.fit`` 63-65 -> 55-57 ms per epoch (seeds 0-3).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from zuko.transforms import MonotonicAffineTransform, MonotonicRQSTransform

from scm.mechanisms.additive import activation_class
from scm.mechanisms.flow import FlowMechanism

Columns = Mapping[str, slice]
Rows = slice | Tensor


@dataclass(frozen=True)
class LivePlan:
    """How :meth:`StackedFlows.log_prob` evaluates a subset of its members: ``members`` (the
    live ones, ``(L,)``), the conditioned rows of each activation run that are live, and the
    member order of ``cat([conditioner outputs, zeros for the live roots])``."""

    members: Tensor
    runs: list[tuple[Tensor, nn.Module]]
    order: Tensor


def stack_key(mechanism: FlowMechanism) -> tuple[int, tuple[int, ...]]:
    """What flows stacked together must share: ``(bins, hidden widths)``. Their activations
    may differ (each run of members that share one is one chain of batched products)."""
    return mechanism.bins, mechanism.hidden


def stackable(mechanism: nn.Module) -> bool:
    """Whether a mechanism is a scalar location-scale flow that :class:`StackedFlows` covers."""
    return (
        type(mechanism) is FlowMechanism and mechanism.dim == 1 and mechanism.n_transforms == 0
        and bool(mechanism.hidden)  # a linear conditioner (hidden=()) has no hidden layer
    )


class StackedFlows(nn.Module):
    """``K`` scalar flow mechanisms as one module, plus ``R`` rival flows for some of them.

    Args:
        nodes: the stacked nodes' names (``K``).
        mechanisms: every node's mechanism (stacked and not; parents of any kind are inputs).
        parents: every node's parents.
        columns: every node's slice of the full data matrix ``(n, D)`` (in ``nodes`` order of
            the SCM, vector nodes taking several columns).
        rivals: more flows for the same data, ``[{node: flow}, ...]``, trained side by side
            (``"auto"``'s other conditioners, :data:`scm.auto.AUTO_CONDITIONERS`): they model
            a node's column from its parents' columns like its own mechanism, with another
            activation. They are members ``K..K+R``.
        value_columns: the column (a key of ``columns``) that holds a member's value where it
            is not the member's own: its node's log, for a node on the log scale (its flow
            models the log; the Jacobian is added). ``parents`` may name such columns too.

    Shapes: data matrices are ``(n, D)`` in data units; log-densities are ``(n, K + R)``.
    """

    def __init__(
        self,
        nodes: Sequence[str],
        mechanisms: Mapping[str, nn.Module],
        parents: Mapping[str, Sequence[str]],
        columns: Columns,
        rivals: Sequence[Mapping[str, FlowMechanism]] = (),
        value_columns: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__()
        first = mechanisms[nodes[0]]
        for node in nodes:
            mech = mechanisms[node]
            if not stackable(mech) or stack_key(mech) != stack_key(first):
                raise ValueError(f"node {node!r}: mechanism cannot be stacked with {nodes[0]!r}")
        for flows in rivals:
            for node, mech in flows.items():
                if not stackable(mech) or stack_key(mech) != stack_key(first):
                    raise ValueError(f"rival flow of {node!r}: cannot be stacked with {nodes[0]!r}")
        self.nodes = list(nodes)
        # Members: the stacked nodes, then the rivals; a plain list, so that the rivals'
        # parameters are not this module's (they are copied in, trained here, written back).
        self._members: list[tuple[str, FlowMechanism]] = [
            *((n, mechanisms[n]) for n in nodes),
            *((n, m) for flows in rivals for n, m in flows.items()),
        ]
        members = [n for n, _ in self._members]
        self.parents = {k: list(parents[k]) for k in members}
        self.columns = dict(columns)
        width = max(s.stop for s in columns.values())
        k = len(members)
        # A member's value: its node's column, or another (the node's log, scm.log_nodes).
        value_columns = {n: (value_columns or {}).get(n, n) for n in members}
        self.out_index = torch.tensor([columns[value_columns[n]].start for n in members])
        # A member on the log scale models log x: log p(x) = log p(log x) - log x.
        log_valued = [bool(getattr(m, "log_value", False)) for _, m in self._members]
        self.register_buffer("log_valued", torch.tensor(log_valued, dtype=torch.float32))
        self.any_log_valued = any(log_valued)
        # Only the members with parents have a conditioner: a root's shift and log-scale are
        # its bias alone, so the network runs over those ``C`` members (half of the pendulum's).
        self.conditioned = [i for i, n in enumerate(members) if self.parents[n]]
        c = len(self.conditioned)
        roots = [i for i, n in enumerate(members) if not self.parents[n]]
        place = self.conditioned + roots
        self.register_buffer("order", torch.tensor([place.index(i) for i in range(k)]))
        mask = torch.zeros(c, width)
        for row, i in enumerate(self.conditioned):
            for p in self.parents[members[i]]:
                mask[row, columns[p]] = 1.0
        self.register_buffer("mask", mask)
        # Homoscedastic members' conditioners set the shift only (FlowMechanism.homoscedastic).
        fixed = [row for row, i in enumerate(self.conditioned)
                 if self._members[i][1].homoscedastic]
        self.register_buffer("output_mask", torch.ones(c, 2, 1))
        self.output_mask[fixed, 1] = 0.0
        self.masks_output = bool(fixed)
        # The hidden activation of each run of conditioned members that share one:
        # ``(first row, end row, activation)``.
        names = [self._members[i][1].activation for i in self.conditioned] or [first.activation]
        self.activation_runs: list[tuple[int, int, nn.Module]] = []
        start = 0
        for name, run in itertools.groupby(names):
            end = start + len(list(run))
            # In place: it acts on a fresh product, and its gradient then reads the saved
            # output (ELU's no longer recomputes the exponential).
            self.activation_runs.append((start, end, activation_class(name)(inplace=True)))
            start = end
        # Standardisation of every column: a member's value column as the member's own, any
        # other as its children's conditioners standardise it (for a continuous node the same
        # as its own; a categorical node's values are not rescaled, loc 0 and scale 1e-6, and
        # read through its own they entered the conditioners a million times too large).
        loc, scale = torch.zeros(width), torch.ones(width)
        values = {value_columns[n] for n in members}
        for node, mech in self._members:
            start = 0
            for p in self.parents[node]:
                cols = columns[p]
                end = start + cols.stop - cols.start
                if p not in values:  # no member's value: a parent only
                    loc[cols] = mech.context_loc[start:end]
                    scale[cols] = mech.context_scale[start:end]
                start = end
        for node, mech in self._members:
            cols = columns[value_columns[node]]
            loc[cols], scale[cols] = mech.loc, mech.scale
        self.register_buffer("loc", loc)
        self.register_buffer("scale", scale)

        # One parameter tensor, viewed as the layers' weights, their biases and the per-member
        # terms (output bias, noise spline): Pyro runs one optimiser per tensor, ~140 us of
        # Python per tensor and step, and ClippedAdam's update is elementwise, so one tensor
        # takes exactly the steps that separate tensors would.
        sizes = [width, *first.hidden, 2]
        self.weight_shapes = [(c, a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
        self.bias_sizes = sizes[1:]
        self.noise_sizes = [2, first.bins, first.bins, first.bins - 1]
        self.part_shapes = [*self.weight_shapes, (c, sum(self.bias_sizes)),
                            (k, sum(self.noise_sizes))]
        self.flat = nn.Parameter(torch.zeros(sum(math.prod(s) for s in self.part_shapes)))
        with torch.no_grad():
            for i, (_, mech) in enumerate(self._members):
                self._read(i, mech)
        self.live: list[int] = list(range(k))
        self._live_plan: LivePlan | None = None

    def retire(self, members: Iterable[int]) -> None:
        """Stop evaluating ``members`` (indices into the members, nodes then rivals): from now
        on :meth:`log_prob` returns the columns of :attr:`live` only and costs only theirs.
        Their parameters stay in :attr:`flat` (a retired member gets no gradient) and
        :meth:`write_back` still copies them out."""
        gone = set(members)
        self.live = [i for i in self.live if i not in gone]
        if not self.live:
            raise ValueError("cannot retire every member of a stack")
        live = set(self.live)
        rows = [row for row, i in enumerate(self.conditioned) if i in live]
        runs = []
        for a, b, act in self.activation_runs:
            inside = [r for r in rows if a <= r < b]
            if inside:
                runs.append((torch.tensor(inside), act))
        roots = [i for i in self.live if i not in self.conditioned]
        place = [self.conditioned[r] for r in rows] + roots
        self._live_plan = LivePlan(
            members=torch.tensor(self.live),
            runs=runs,
            order=torch.tensor([place.index(i) for i in self.live]),
        )

    # ------------------------------------------------------------- parameter views
    def parameter_views(self) -> dict[str, Tensor]:
        """Views of :attr:`flat`: ``weights.j`` ``(C, in, out)`` for every conditioner layer
        ``j``, ``bias`` ``(C, sum of widths)`` and ``noise`` ``(K + R, 2 + 3 bins - 1)``."""
        parts = self.flat.split([math.prod(s) for s in self.part_shapes])
        names = [*(f"weights.{j}" for j in range(len(self.weight_shapes))), "bias", "noise"]
        return {name: part.view(shape)
                for name, part, shape in zip(names, parts, self.part_shapes, strict=True)}

    @property
    def weights(self) -> tuple[Tensor, ...]:
        """Each conditioner layer's weight, ``(C, in, out)``: views of :attr:`flat`."""
        views = self.parameter_views()
        return tuple(views[f"weights.{j}"] for j in range(len(self.weight_shapes)))

    @property
    def bias(self) -> Tensor:
        """Every conditioner layer's bias side by side, ``(C, sum of widths)``: a view."""
        return self.parameter_views()["bias"]

    @property
    def noise(self) -> Tensor:
        """Every member's output bias and noise-spline parameters, ``(K + R, 2 + 3 bins - 1)``:
        a view."""
        return self.parameter_views()["noise"]

    @property
    def biases(self) -> tuple[Tensor, ...]:
        """Each conditioner layer's bias, ``(C, width)``: views of :attr:`bias`."""
        return self.bias.split(self.bias_sizes, -1)

    def noise_parts(self, noise: Tensor | None = None) -> tuple[Tensor, ...]:
        """``(out_bias, widths, heights, derivatives)``: views of :attr:`noise` (or of one
        member's row of it), ``(..., 2)``, ``(..., bins)``, ``(..., bins)``, ``(..., bins - 1)``."""
        return (self.noise if noise is None else noise).split(self.noise_sizes, -1)

    def _conditioners(
        self,
        z: Tensor,
        views: dict[str, Tensor],
        runs: Sequence[tuple[Rows, nn.Module]] | None = None,
    ) -> Tensor:
        """Every conditioned member's ``(shift, log-scale)`` offsets, ``(C, 2, n)``, from
        standardised rows ``z (n, D)`` and :meth:`parameter_views`; each run of members that
        share an activation is one chain of batched products (a ``torch.cat`` per layer cost
        more than the extra ops). A run's first layer is one matrix product ``(c * width, D) @
        (D, n)`` rather than a batched product that repeats ``z`` for every member.

        The hidden units are laid out ``(c, width, n)`` (rows last): every product then reads
        and writes contiguous memory, where ``(c, n, width)`` needed a transposed copy of the
        first layer's output forward and of its gradient backward (random20's stack: 7% of a
        training step). ``runs``: ``(rows, activation)`` per run, the conditioned rows as a
        slice or an index tensor (default: every run, :attr:`activation_runs`)."""
        outs = []
        n, d = z.shape
        weights = [views[f"weights.{j}"] for j in range(len(self.weight_shapes))]
        biases = views["bias"].split(self.bias_sizes, -1)
        last = len(weights) - 1
        if runs is None:
            runs = [(slice(a, b), act) for a, b, act in self.activation_runs]
        for rows, act in runs:
            w0 = weights[0][rows] * self.mask[rows, :, None]  # (c, D, width)
            c, width = w0.shape[0], w0.shape[2]
            h = (w0.transpose(1, 2).reshape(c * width, d) @ z.T).view(c, width, n)
            h = act(h + biases[0][rows, :, None])
            for j in range(1, last + 1):
                h = torch.baddbmm(biases[j][rows, :, None], weights[j][rows].transpose(1, 2), h)
                if j < last:
                    h = act(h)
            outs.append(h * self.output_mask[rows] if self.masks_output else h)
        return outs[0] if len(outs) == 1 else torch.cat(outs)

    # ------------------------------------------------------------- the log-density
    def log_prob(self, x: Tensor) -> Tensor:
        """Per-member log-densities ``(n, L)`` of the full data matrix ``x (n, D)``, for the
        :attr:`live` members (all ``K + R`` unless some were retired)."""
        z = (x - self.loc) / self.scale
        views = self.parameter_views()
        noise, out_index = views["noise"], self.out_index
        plan, runs, order = self._live_plan, None, self.order
        if plan is not None:
            noise, out_index = noise[plan.members], out_index[plan.members]
            runs, order = plan.runs, plan.order
        out, widths, heights, derivatives = self.noise_parts(noise)
        if plan is None and self.conditioned or plan is not None and plan.runs:
            h = self._conditioners(z, views, runs)
            # (C, 2, n) -> (n, K, 2): the roots' rows are zero, then back to member order
            # (index_select: the gradient of ``h[order]`` is an accumulating index_put, slower).
            h = torch.cat([h, h.new_zeros(len(order) - len(h), *h.shape[1:])])
            out = h.index_select(0, order).permute(2, 0, 1) + out
        affine = MonotonicAffineTransform(out[..., 0], out[..., 1])
        y = z[:, out_index]
        v = affine.inv(y)
        u, ladj = rqs_call_and_ladj(v, widths, heights, derivatives)
        base = -0.5 * u.square() - 0.5 * math.log(2 * math.pi)
        lp = base + ladj - affine.log_scale - self.scale[out_index].log()
        if self.any_log_valued:
            logged = self.log_valued if plan is None else self.log_valued[plan.members]
            lp = lp - x[:, out_index] * logged
        return lp

    # ------------------------------------------------------------- parameter exchange
    def write_back(self) -> None:
        """Copy every member's slices into the mechanism or rival flow it was read from."""
        with torch.no_grad():
            for i, (_, mech) in enumerate(self._members):
                self._write(i, mech)

    def slices(self, node: str) -> dict[str, Tensor]:
        """A detached copy of stacked ``node``'s slice of every stacked parameter (a root has
        no conditioner, so no ``weights.*`` or ``bias``)."""
        return {name: p[row].detach().clone()
                for name, p, row in self._member_params(self.nodes.index(node))}

    def member_weights(self, i: int) -> list[Tensor]:
        """Views of member ``i``'s rows of every stacked parameter (writing into them writes
        :attr:`flat`)."""
        return [p[row] for _, p, row in self._member_params(i)]

    def _member_params(self, i: int) -> list[tuple[str, Tensor, int]]:
        """``(name, stacked parameter, member's row in it)`` for every parameter member ``i``
        has."""
        c = self.conditioned.index(i) if i in self.conditioned else None
        out = []
        for name, p in self.parameter_views().items():
            if name == "noise":
                out.append((name, p, i))
            elif c is not None:
                out.append((name, p, c))
        return out

    def _cols(self, node: str) -> list[int]:
        return [c for p in self.parents[node] for c in range(self.columns[p].start,
                                                             self.columns[p].stop)]

    def _read(self, i: int, mech: FlowMechanism) -> None:
        node = self._members[i][0]
        out_bias, widths, heights, derivatives = self.noise_parts(self.noise[i])
        widths.copy_(mech.noise_widths[0])
        heights.copy_(mech.noise_heights[0])
        derivatives.copy_(mech.noise_derivatives[0])
        out_bias.copy_(mech.loc_scale_bias)
        if mech.loc_scale is None:
            return
        c = self.conditioned.index(i)
        linears = [m for m in mech.loc_scale if isinstance(m, nn.Linear)]
        self.weights[0][c, self._cols(node)] = linears[0].weight.T
        for j, (lin, bias) in enumerate(zip(linears, self.biases, strict=True)):
            if j:
                self.weights[j][c] = lin.weight.T
            bias[c] = lin.bias

    def _write(self, i: int, mech: FlowMechanism) -> None:
        node = self._members[i][0]
        rows = {name: p[row] for name, p, row in self._member_params(i)}
        out_bias, widths, heights, derivatives = self.noise_parts(rows["noise"])
        mech.noise_widths[0] = widths
        mech.noise_heights[0] = heights
        mech.noise_derivatives[0] = derivatives
        mech.loc_scale_bias.copy_(out_bias)
        if mech.loc_scale is None:
            return
        linears = [m for m in mech.loc_scale if isinstance(m, nn.Linear)]
        biases = rows["bias"].split(self.bias_sizes, -1)
        linears[0].weight.copy_(rows["weights.0"][self._cols(node)].T)
        for j, (lin, bias) in enumerate(zip(linears, biases, strict=True)):
            if j:
                lin.weight.copy_(rows[f"weights.{j}"].T)
            lin.bias.copy_(bias)


def rqs_call_and_ladj(
    x: Tensor, widths: Tensor, heights: Tensor, derivatives: Tensor
) -> tuple[Tensor, Tensor]:
    """``MonotonicRQSTransform(widths, heights, derivatives).call_and_ladj(x)`` of zuko (same
    parametrisation: bound 5, minimum slope 1e-3), one spline per column of ``x (n, K)``.

    The same formulas, but each row's knots are fetched from the flattened ``(K * (bins + 1),)``
    knot table with ``torch.take``, whose gradient is a scatter into that small table; zuko
    gathers from the table broadcast to ``(2, n, K, bins + 1)``, whose gradient materialises
    that whole shape (with the other savings listed in the module docstring). Returns
    ``(y, log |dy/dx|)``, both ``(n, K)``.
    """
    ref = MonotonicRQSTransform(widths, heights, derivatives)  # the knots, as zuko computes them
    horizontal, vertical, slopes = ref.horizontal, ref.vertical, ref.derivatives
    n_knots = horizontal.shape[-1]
    bins = n_knots - 1
    k = (horizontal.detach() < x[..., None]).sum(-1) - 1
    inside = (k >= 0) & (k < bins)
    k = k.clamp(0, bins - 1) + torch.arange(x.shape[-1], device=x.device) * n_knots
    x0, x1 = horizontal.take(k), horizontal.take(k + 1)
    y0, y1 = vertical.take(k), vertical.take(k + 1)
    d0, d1 = slopes.take(k), slopes.take(k + 1)
    s = (y1 - y0) / (x1 - x0)
    z = inside * (x - x0) / (x1 - x0)
    zz = z * (1 - z)
    denominator = s + (d0 + d1 - 2 * s) * zz
    y = y0 + (y1 - y0) * (s * z**2 + d0 * zz) / denominator
    jacobian = s**2 * (2 * s * zz + d0 * (1 - z) ** 2 + d1 * z**2) / denominator**2
    return torch.where(inside, y, x), inside * jacobian.log()


def column_slices(nodes: Sequence[str], dims: Mapping[str, int]) -> dict[str, slice]:
    """Each node's columns in the data matrix that concatenates ``nodes`` in order."""
    out, start = {}, 0
    for node in nodes:
        out[node] = slice(start, start + dims[node])
        start += dims[node]
    return out
