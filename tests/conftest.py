"""One test environment: one thread, seeded, fresh param store, Pyro validation on."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pyro  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _fresh_state():
    pyro.clear_param_store()
    pyro.enable_validation(True)
    pyro.set_rng_seed(0)
    yield
    pyro.clear_param_store()


@pytest.fixture(scope="session")
def cache(tmp_path_factory):
    """One rendered-image cache for the whole run (``$CAUFLOW_CACHE``), so each small image
    set is rendered once and no test writes under the user's home directory."""
    path = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CAUFLOW_CACHE", str(path))
        yield path


@pytest.fixture(scope="session")
def tiny_pendulum(cache):
    """64 Pendulum training images at 32x32, rendered once for the CauF-VAE tests."""
    from models.data import load_dataset

    return load_dataset("pendulum", size=32, split="train", n=64, progress=False)
