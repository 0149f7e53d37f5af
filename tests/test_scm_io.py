"""Save -> load round trips; altered files are refused with a clear error."""

import json

import pandas as pd
import pytest
import torch

from scm import SCM, FlowMechanism, zoo


@pytest.fixture(scope="module")
def fitted():
    truth = zoo.triangle()
    scm = SCM(truth.graph, mechanisms="flow", hidden=(16, 16))
    scm.fit(truth.sample(400, seed=0), epochs=3, progress=False)
    return scm, truth.sample(50, seed=1)


def test_round_trip_gives_identical_answers(tmp_path, fitted):
    scm, factual = fitted
    scm.save(tmp_path / "m")
    loaded = SCM.load(tmp_path / "m")
    pd.testing.assert_frame_equal(scm.sample(100, seed=3), loaded.sample(100, seed=3))
    pd.testing.assert_frame_equal(
        scm.counterfactual(factual, {"x1": 0.3}), loaded.counterfactual(factual, {"x1": 0.3})
    )
    assert loaded.parents == scm.parents and loaded.dims == scm.dims


@pytest.mark.filterwarnings("ignore:.*never fitted:UserWarning")  # unfitted on purpose
def test_vector_and_mixed_mechanisms_round_trip(tmp_path):
    scm = SCM(
        {"z": [], "y": ["z"], "c": ["y"]},
        {"z": "flow", "y": "additive", "c": "categorical"},
        dims={"z": 2},
    )
    scm.save(tmp_path / "m")
    pd.testing.assert_frame_equal(
        scm.sample(30, seed=0), SCM.load(tmp_path / "m").sample(30, seed=0)
    )


@pytest.mark.filterwarnings("ignore:.*never fitted:UserWarning")  # unfitted on purpose
def test_conditioner_activation_round_trips(tmp_path):
    """A non-default activation is part of the spec: the loaded model computes the same
    function (a model loaded with ReLU instead would give other densities)."""
    scm = SCM({"x": [], "y": ["x"]}, {"x": "flow", "y": FlowMechanism(1, 1, activation="elu")})
    with torch.no_grad():
        for p in scm.mechanisms.parameters():
            p.add_(0.3 * torch.randn_like(p, generator=torch.Generator().manual_seed(0)))
    scm.save(tmp_path / "m")
    loaded = SCM.load(tmp_path / "m")
    assert loaded.mechanisms["y"].activation == "elu"
    rows = scm.sample(50, seed=0)
    torch.testing.assert_close(torch.as_tensor(loaded.log_prob(rows)),
                               torch.as_tensor(scm.log_prob(rows)))


def test_truncated_weights_are_refused(tmp_path, fitted):
    scm, _ = fitted
    scm.save(tmp_path / "m")
    w = tmp_path / "m" / "weights.safetensors"
    w.write_bytes(w.read_bytes()[:-100])
    with pytest.raises(ValueError, match="altered or truncated"):
        SCM.load(tmp_path / "m")


def test_tampered_weights_are_refused(tmp_path, fitted):
    scm, _ = fitted
    scm.save(tmp_path / "m")
    w = tmp_path / "m" / "weights.safetensors"
    blob = bytearray(w.read_bytes())
    blob[-1] ^= 0xFF
    w.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="altered or truncated"):
        SCM.load(tmp_path / "m")


def test_bad_spec_is_refused(tmp_path, fitted):
    scm, _ = fitted
    scm.save(tmp_path / "m")
    spec_path = tmp_path / "m" / "scm.json"
    spec = json.loads(spec_path.read_text())
    spec["version"] = 99
    spec_path.write_text(json.dumps(spec))
    with pytest.raises(ValueError, match="spec version 99"):
        SCM.load(tmp_path / "m")
    spec_path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        SCM.load(tmp_path / "m")
    with pytest.raises(ValueError, match="missing"):
        SCM.load(tmp_path / "nowhere")


def test_an_edited_spec_is_refused(tmp_path, fitted):
    """The spec carries its own checksum: a node's parents edited in scm.json loaded as
    another causal model, silently (held-out log-likelihood -3.995 -> -5.29 per row in the
    stress round); a version-1 file, which has none, still loads."""
    scm, factual = fitted
    scm.save(tmp_path / "m")
    spec_path = tmp_path / "m" / "scm.json"
    spec = json.loads(spec_path.read_text())
    edited = {**spec, "graph": {**spec["graph"], "x3": ["x2"]}}
    spec_path.write_text(json.dumps(edited))
    with pytest.raises(ValueError, match="does not match its own checksum"):
        SCM.load(tmp_path / "m")
    old = {k: v for k, v in spec.items() if k != "spec_sha256"} | {"version": 1}
    spec_path.write_text(json.dumps(old))
    pd.testing.assert_frame_equal(SCM.load(tmp_path / "m").sample(20, seed=0),
                                  scm.sample(20, seed=0))


def test_a_bayesian_folder_without_its_posterior_is_refused(tmp_path):
    """A Bayesian SCM's answers come from its posterior draws: a folder that lost
    posterior.json answered do-queries from the unfitted priors' weights (E[x3 | do(x1=1)]
    4.10 against -1.8), silently."""
    scm = SCM({"x": [], "y": ["x"]}, "bayes-linear")
    scm.save(tmp_path / "b")
    with pytest.raises(ValueError, match="Bayesian SCM but no posterior"):
        SCM.load(tmp_path / "b")
    (tmp_path / "b" / "posterior.safetensors").write_bytes(b"draws")
    with pytest.raises(ValueError, match="posterior.json is missing"):
        SCM.load(tmp_path / "b")


def test_saved_files_are_as_readable_as_plain_files(tmp_path, fitted):
    """Written through tempfile.mkstemp they were 0600 (owner only); now 0666 less the
    umask, as ``open`` gives."""
    import os

    scm, _ = fitted
    scm.save(tmp_path / "m")
    umask = os.umask(0)
    os.umask(umask)
    for name in ("scm.json", "weights.safetensors"):
        assert (tmp_path / "m" / name).stat().st_mode & 0o777 == 0o666 & ~umask
