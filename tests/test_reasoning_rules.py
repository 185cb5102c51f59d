"""The engine's rules on a deterministic fake backend with a reward landscape the test controls.

Each test names the rule it guards; `scripts/mutants.py` reverses or removes each rule and checks a test fails.
"""

import ast
import dataclasses
import math
from pathlib import Path

import pytest
import torch
from PIL import Image

from fake_backend import FakeBackend
from reason_iad.config import ReasoningConfig
from reason_iad.reasoning import patches as patch_ops
from reason_iad.reasoning import suffix as rows
from reason_iad.reasoning.engine import NO_EVIDENCE_PRIOR, InspectionRequest, Reasoner
from reason_iad.reasoning.prompt import Question

ANSWER_ONLY = ReasoningConfig(
    mode="latent",
    num_latent_tokens=2,
    num_steps=8,
    inject_patches=False,
    reward_weights={"answer": 1.0},
)
HELPFUL = (0.0, 0.0, 0.0, 0.0, 0.0, 3.0, 0.0, 2.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
HARMFUL = (-0.25,) * 16  # pulls the answer back towards 50/50: every patch lowers the reward


def _request(template=True, prior=None):
    image = Image.new("RGB", (64, 64), (120, 120, 120))
    return InspectionRequest(
        image, Question.anomaly(), template=Image.new("RGB", (64, 64)) if template else None, patch_prior=prior
    )


def _run(backend, config, request=None):
    return Reasoner(backend, config).run(request or _request())


def test_es_update_climbs_the_reward():
    """Rule: the ES step goes uphill (sign) and moves at all."""
    steps = _run(FakeBackend(), ANSWER_ONLY).steps
    rewards = [s.reward for s in steps]
    assert rewards[-1] > rewards[0] + 0.02
    assert sum(b > a for a, b in zip(rewards, rewards[1:], strict=False)) >= 5


def test_latent_reward_alone_is_climbed_too():
    """Rule: the latent-entropy reward is maximised (its sign), not only the answer reward."""
    config = dataclasses.replace(ANSWER_ONLY, reward_weights={"latent": 1.0}, learning_rate=0.2)
    rewards = [s.reward for s in _run(FakeBackend(), config).steps]
    assert rewards[-1] > rewards[0]


def test_sigma_is_relative_to_the_embedding_rms_and_decays():
    """Rules: sigma = sigma_scale * rms; sigma decays by sigma_decay every step."""
    for rms in (0.02, 5.0):
        steps = _run(FakeBackend(rms=rms), ANSWER_ONLY).steps
        assert steps[0].sigma == pytest.approx(0.1 * rms, rel=1e-5)
        assert steps[3].sigma == pytest.approx(0.1 * rms * 0.95**3, rel=1e-5)


def test_learning_rate_sets_the_step_length_in_rms_units():
    """Rule: each element of Z moves by lr * rms per step; the clip is a rail that binds only when asked to."""
    backend = FakeBackend(rms=0.027)  # the shipped inspector's embedding RMS
    numel = ANSWER_ONLY.num_latent_tokens * backend.dim
    traces = {}
    for lr in (0.01, 0.05, 1.0):
        steps = _run(backend, dataclasses.replace(ANSWER_ONLY, learning_rate=lr)).steps
        traces[lr] = [s.reward for s in steps]
        if lr < 0.1:
            assert not any(s.clipped for s in steps)
            assert steps[0].step_norm == pytest.approx(lr * 0.027 * math.sqrt(numel), rel=1e-4)
        else:
            assert all(s.clipped for s in steps)
            assert steps[0].step_norm == pytest.approx(steps[0].sigma * math.sqrt(numel), rel=1e-4)
    assert traces[0.01] != traces[0.05] != traces[1.0]


def test_an_injection_is_kept_only_when_it_raises_the_reward():
    """Rule: keep a patch only on a reward gain, the seeded ones of step 1 included."""
    config = dataclasses.replace(ANSWER_ONLY, inject_patches=True, learning_rate=1e-6, num_steps=4)
    harmful = _run(FakeBackend(gains=HARMFUL, attention_scores={1: HELPFUL}), config)
    assert harmful.injected == ()
    helpful = _run(FakeBackend(gains=HELPFUL, attention_scores={1: HELPFUL}), config)
    assert {p.token_index for p in helpful.injected} == {5, 7}
    assert helpful.steps[0].new_patches, "the seeded proposals are tried at step 1"


def test_the_patch_budget_is_enforced():
    """Rule: never more than `patch_budget` kept patches."""
    gains = tuple(1.0 + i for i in range(16))
    config = dataclasses.replace(ANSWER_ONLY, inject_patches=True, num_steps=6, patch_budget=1)
    inspection = _run(FakeBackend(gains=gains, attention_scores={1: gains}), config)
    assert len(inspection.injected) == 1
    assert max(len(s.injected) for s in inspection.steps) == 1


def test_attention_is_scored_over_the_query_image_not_the_template():
    """Rule: patch proposals come from the attention over the query image's tokens."""
    backend = FakeBackend(gains=HELPFUL, attention_scores={0: (9.0, 8.0) + (0.0,) * 14, 1: HELPFUL})
    session = Reasoner(backend, dataclasses.replace(ANSWER_ONLY, inject_patches=True, num_steps=1)).start(_request())
    first = next(session.iterate())
    assert session.query_index == 1
    assert {call["image_index"] for call in backend.calls} == {1}
    assert {p.token_index for p in first.new_patches} == {5, 7}  # the query's best tokens, not the template's


def test_patches_sit_right_after_their_own_latent():
    """Rule: a patch for latent j is placed immediately after z_j, before z_{j+1}."""
    z = torch.stack([torch.full((4,), 10.0), torch.full((4,), 20.0), torch.full((4,), 30.0)])
    patch_a, patch_b = torch.full((4,), 1.0), torch.full((4,), 2.0)
    spec = rows.RowSpec(z, ((0, patch_a), (2, patch_b), (0, patch_b)))
    embeds, layout = rows.assemble_row(spec, torch.zeros(2, 4), lambda ids: torch.zeros(len(ids), 4))
    firsts = embeds[:, 0].tolist()
    assert firsts[:6] == [10.0, 1.0, 2.0, 20.0, 30.0, 2.0]
    assert layout.latent_positions == (0, 3, 4) and layout.answer_position == 7


def test_the_final_decode_sees_the_best_latents_and_their_patches():
    """Rules: decode with the best Z as evaluated, and with the patches kept with it."""
    backend = FakeBackend(gains=HELPFUL, attention_scores={1: HELPFUL})
    config = dataclasses.replace(ANSWER_ONLY, inject_patches=True, num_steps=5)
    session = Reasoner(backend, config).start(_request())
    for _ in session.iterate():
        pass
    inspection = session.result()
    [decoded] = backend.generated
    state = session.state
    assert inspection.injected and inspection.injected == state.best_patches
    tail = torch.tensor(backend.followup_ids(f"{inspection.answer}. {inspection.answer_text}", config.rationale_prompt))
    assert decoded.shape[1] == config.num_latent_tokens + len(inspection.injected) + len(tail)
    expected, _ = rows.assemble_row(
        session._spec(state.best_latents, state.best_patches), backend.embed_tokens(tail), backend.embed_tokens
    )
    assert torch.allclose(decoded[0], expected)
    assert all(p.gain > 0 for p in inspection.injected)  # each kept patch cites the reward it gained
    again = session._evaluate([session._spec(state.best_latents, state.best_patches)]).rewards[0]
    assert float(again) == pytest.approx(state.best_reward, abs=1e-6)


def test_the_anomaly_prior_falling_back_to_attention_is_recorded():
    config = dataclasses.replace(ANSWER_ONLY, inject_patches=True, num_steps=2, injection_prior="mix")
    without = _run(FakeBackend(gains=HELPFUL), config)
    assert {s.prior for s in without.steps} == {NO_EVIDENCE_PRIOR}
    with_prior = _run(FakeBackend(gains=HELPFUL), config, _request(prior=lambda boxes: torch.ones(len(boxes))))
    assert {s.prior for s in with_prior.steps} == {"mix"}


def test_the_anomaly_prior_proposes_only_the_tokens_it_flags():
    """Rule: under the anomaly or mix prior, tokens under `prior_gate` of the prior's peak are never tried."""
    gains = tuple(1.0 + i for i in range(16))  # every patch helps: the gate alone keeps patches off tokens 0..15
    flagged = torch.full((16,), 0.1)
    flagged[[2, 3]] = torch.tensor([1.0, 0.8])
    for mode in ("anomaly", "mix"):
        config = dataclasses.replace(ANSWER_ONLY, inject_patches=True, num_steps=6, injection_prior=mode)
        request = _request(prior=lambda boxes: flagged[: len(boxes)])
        gated = _run(FakeBackend(gains=gains, attention_scores={1: gains}), config, request)
        tried = {p.token_index for s in gated.steps for p in s.new_patches}
        assert tried == {2, 3}, mode
        open_gate = _run(
            FakeBackend(gains=gains, attention_scores={1: gains}), dataclasses.replace(config, prior_gate=0.0), request
        )
        assert {p.token_index for p in open_gate.injected} - {2, 3}, mode


def test_the_trials_of_one_step_try_different_tokens():
    """Rule: a token proposed for one latent is not proposed for a later one, nor one already kept."""
    scores = torch.tensor([[3.0, 2.0, 1.0, 0.0], [3.0, 2.0, 1.0, 0.0], [0.0, 0.0, 0.0, 9.0]])
    assert patch_ops.propose_patches(scores, 1) == [[0], [1], [3]]
    assert patch_ops.propose_patches(scores, 2, exclude={1}) == [[0, 2], [3], []]


def test_the_prior_gate_flags_tokens_near_the_peak_only():
    prior = torch.tensor([0.1, 0.6, 1.0, 0.4, 0.5])
    assert patch_ops.below_prior_gate(prior, 0.5) == {0, 3}
    assert patch_ops.below_prior_gate(prior, 0.0) == set()
    assert patch_ops.below_prior_gate(torch.zeros(4), 0.5) == set()  # no peak: nothing to gate by


def test_seeded_runs_repeat_exactly():
    first, again = _run(FakeBackend(), ANSWER_ONLY), _run(FakeBackend(), ANSWER_ONLY)
    assert [s.reward for s in first.steps] == [s.reward for s in again.steps]
    other = _run(FakeBackend(), dataclasses.replace(ANSWER_ONLY, seed=1))
    assert [s.reward for s in other.steps] != [s.reward for s in first.steps]


_FACTORIES = {"tensor", "zeros", "ones", "full", "arange", "randn", "rand", "empty", "eye", "linspace", "as_tensor"}
_CPU_BY_DESIGN = {
    ("reason_iad/backends/families.py", "pixel_boxes"),  # pixel geometry metadata; moved where it is mixed
    ("reason_iad/reasoning/update.py", "antithetic_noise"),  # seeded CPU draws, moved to the device at once
    ("reason_iad/reasoning/patches.py", "attention_grid"),  # reads the CPU copy made for the studio's map
    # the visual memory keeps its banks on the CPU (LanceDB rows); search copies move with an explicit .to()
    ("reason_iad/memory/backbone.py", "patch_features"),  # documented: features returned on the CPU
    ("reason_iad/memory/bank.py", "extract_patches"),  # empty CPU bank
    ("reason_iad/memory/bank.py", "select_coreset"),  # indices into a CPU bank
    ("reason_iad/memory/coreset.py", "project"),  # seeded CPU projection, moved to the features' device
    ("reason_iad/memory/coreset.py", "greedy_coreset"),  # chosen indices, read back with .numpy()
    ("reason_iad/memory/scoring.py", "gaussian_kernel"),  # moved to the map's device by gaussian_blur
}


def _factory_calls_without_device(path: Path):
    tree = ast.parse(path.read_text())
    for function in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]:
        for node in ast.walk(function):
            is_factory = (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in _FACTORIES
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "torch"
            )
            if is_factory and not any(k.arg == "device" for k in node.keywords):
                yield function.name, node.lineno


def test_every_tensor_the_engine_and_backends_make_names_its_device():
    """Rule: no tensor is silently created on the CPU in reasoning/, backends/, memory/ (a CUDA device mismatch)."""
    root = Path(__file__).resolve().parent.parent
    offenders = []
    for folder in ("reason_iad/reasoning", "reason_iad/backends", "reason_iad/memory"):
        for path in sorted((root / folder).glob("*.py")):
            relative = str(path.relative_to(root))
            if path.name in ("tiny.py", "command.py", "report.py"):  # model building and CLI output, not the loop
                continue
            for name, line in _factory_calls_without_device(path):
                if (relative, name) not in _CPU_BY_DESIGN:
                    offenders.append(f"{relative}:{line} in {name}()")
    assert not offenders, "tensors created without device=: " + ", ".join(offenders)
