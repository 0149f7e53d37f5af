"""Why the flow mechanism uses zuko: fit one conditional with zuko and with Pyro's own splines.

Fits p(x3 | x1, x2) of the zoo triangle (heteroscedastic, nonlinear) with
(a) zuko's NSF (as in ``scm.mechanisms.FlowMechanism``) and (b) Pyro's ``conditional_spline``,
same bins, hidden widths, optimiser, steps and data; prints ms/step and held-out NLL.

    OMP_NUM_THREADS=1 python bench/flow_backends.py
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pyro.distributions as dist  # noqa: E402
import torch  # noqa: E402
import zuko  # noqa: E402
from pyro.distributions.transforms import conditional_spline  # noqa: E402

from scm import zoo  # noqa: E402

torch.set_num_threads(1)


def data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    df = zoo.triangle().sample(n, seed=seed)
    c = torch.tensor(df[["x1", "x2"]].to_numpy(), dtype=torch.float32)
    x = torch.tensor(df[["x3"]].to_numpy(), dtype=torch.float32)
    return (c - c.mean(0)) / c.std(0), (x - x.mean(0)) / x.std(0)


def train(name: str, log_prob, params, steps: int, c, x, c_val, x_val) -> dict:  # noqa: ANN001
    torch.manual_seed(0)
    opt = torch.optim.Adam(params, lr=5e-3)
    t0 = time.perf_counter()
    for _ in range(steps):
        idx = torch.randint(0, len(x), (512,))
        loss = -log_prob(c[idx], x[idx]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    ms = (time.perf_counter() - t0) / steps * 1000
    with torch.no_grad():
        nll = -log_prob(c_val, x_val).mean().item()
    return {"backend": name, "ms/step": ms, "val NLL": nll}


def main(steps: int = 1500) -> None:
    c, x = data(5000, 0)
    c_val, x_val = data(2000, 1)
    torch.manual_seed(0)
    zflow = zuko.flows.NSF(1, 2, bins=8, transforms=1, hidden_features=(64, 64))
    torch.manual_seed(0)
    pspline = conditional_spline(1, 2, hidden_dims=[64, 64], count_bins=8, bound=5.0)
    base = dist.Normal(torch.zeros(1), 1.0).to_event(1)

    def pyro_log_prob(ci: torch.Tensor, xi: torch.Tensor) -> torch.Tensor:
        return dist.ConditionalTransformedDistribution(base, [pspline]).condition(ci).log_prob(xi)

    rows = [
        train(
            "zuko NSF (1 layer)",
            lambda ci, xi: zflow(ci).log_prob(xi),
            zflow.parameters(),
            steps,
            c,
            x,
            c_val,
            x_val,
        ),
        train(
            "pyro conditional_spline",
            pyro_log_prob,
            pspline.parameters(),
            steps,
            c,
            x,
            c_val,
            x_val,
        ),
    ]
    print(f"| backend | ms/step (batch 512) | held-out NLL after {steps} steps |")
    print("|---|---|---|")
    for r in rows:
        print(f"| {r['backend']} | {r['ms/step']:.2f} | {r['val NLL']:.4f} |")


if __name__ == "__main__":
    main()
