"""End to end on tiny random-weight models, and one regression test per bug of DMLR's public code."""

import dataclasses

import pytest
import torch
from PIL import Image

from reason_iad.config import ReasoningConfig
from reason_iad.errors import UserError
from reason_iad.reasoning.engine import InspectionRequest, Reasoner
from reason_iad.reasoning.prompt import Question, build_messages

FAST = ReasoningConfig(num_latent_tokens=2, num_steps=3, patches_per_step=2, patch_budget=6)


def _image(spot=(30, 30, 50, 50), colour=(250, 250, 250)):
    image = Image.new("RGB", (96, 96), (120, 120, 120))
    image.paste(colour, spot)
    return image


def _request(image=None, knowledge=("<Scratch>\nA thin bright line.",)):
    return InspectionRequest(
        image or _image(), Question.anomaly(), template=_image(spot=(0, 0, 1, 1)), knowledge=knowledge
    )


@pytest.mark.parametrize("family", ["qwen2_5_vl", "llava"])
@pytest.mark.parametrize("mode", ["plain", "knowledge", "latent", "full"])
def test_every_mode_runs_and_streams_its_steps(tiny_backends, family, mode):
    config = dataclasses.replace(FAST, mode=mode)
    inspection = Reasoner(tiny_backends[family], config).run(_request())
    expected_steps = config.num_steps if config.uses_latents else 0
    assert [s.step for s in inspection.steps] == list(range(1, expected_steps + 1))
    assert inspection.answer in ("A", "B") and inspection.answer_text in ("Yes.", "No.")
    assert sum(inspection.option_probs.values()) == pytest.approx(1.0, abs=1e-5)
    assert len(inspection.injected) <= config.patch_budget
    assert inspection.timings.total_ms >= inspection.timings.prefix_ms > 0
    assert len(inspection.attention_map) > 0


def test_same_seed_same_result_and_other_seed_differs(tiny_backends):
    backend = tiny_backends["qwen2_5_vl"]
    first = Reasoner(backend, FAST).run(_request())
    again = Reasoner(backend, FAST).run(_request())
    other = Reasoner(backend, dataclasses.replace(FAST, seed=7)).run(_request())
    trace = [(s.reward, s.injected, s.option_probs) for s in first.steps]
    assert trace == [(s.reward, s.injected, s.option_probs) for s in again.steps]
    assert first.option_probs == again.option_probs and first.rationale == again.rationale
    assert [s.reward for s in other.steps] != [s.reward for s in first.steps]


def test_early_stop_closes_cleanly_and_still_answers(tiny_backends):
    session = Reasoner(tiny_backends["qwen2_5_vl"], dataclasses.replace(FAST, num_steps=10)).start(_request())
    stream = session.iterate()
    for step in stream:
        if step.step == 2:
            break
    stream.close()
    inspection = session.result()
    assert len(inspection.steps) == 2 and inspection.answer in ("A", "B")


def test_four_bit_backend_runs_full(tiny_model_dirs):
    from reason_iad.backends.loading import load_backend
    from reason_iad.config import BackendConfig

    backend = load_backend(BackendConfig(model=str(tiny_model_dirs["qwen2_5_vl"]), quantization="4bit", device="cpu"))
    inspection = Reasoner(backend, dataclasses.replace(FAST, optimizer="autograd")).run(_request())
    assert len(inspection.steps) == FAST.num_steps


def test_too_long_for_the_context_is_refused_before_any_forward(tiny_backends, monkeypatch):
    backend = tiny_backends["llava"]
    calls = []
    monkeypatch.setattr(backend.model, "forward", lambda *a, **k: calls.append(1))
    knowledge = tuple("defect surface region " * 400 for _ in range(6))
    with pytest.raises(UserError, match="positions"):
        Reasoner(backend, FAST).start(_request(knowledge=knowledge))
    assert calls == []  # refused from the token count, no prefix forward spent


# ---- regressions for the bugs of DMLR's public code (DESIGN §2) ---------------------------------------------


def test_reward_pass_sees_the_image_with_model_positions(tiny_backends):
    """Step 1's current-latent row equals the model's own forward with pixel inputs and its own M-RoPE."""
    backend = tiny_backends["qwen2_5_vl"]
    config = dataclasses.replace(FAST, mode="latent", num_steps=1)
    request = _request()
    inspection = Reasoner(backend, config).run(request)
    messages = build_messages(request.question, request.image, request.template)
    prefix_text, header_text, images = backend.render(messages)
    latent_text = backend.tokenizer.convert_ids_to_tokens(backend.latent_token_id) * config.num_latent_tokens
    inputs = backend.processor_inputs(prefix_text + latent_text + header_text, images)
    with torch.no_grad():
        logits = backend.model(**inputs).logits[0, -1]
    letters = torch.tensor(backend.first_token_ids(["A", "B"]))
    expected = torch.softmax(logits[letters].float(), -1).tolist()
    assert list(inspection.steps[0].option_probs.values()) == pytest.approx(expected, abs=1e-4)
    changed = Reasoner(backend, config).run(_request(_image(spot=(60, 0, 96, 40), colour=(0, 0, 0))))
    assert changed.steps[0].reward != inspection.steps[0].reward  # the image drives the reward


def _spy(monkeypatch, backend, method):
    calls = []
    original = getattr(backend, method)

    def wrapper(prefix, suffix_embeds, *args, **kwargs):
        calls.append(suffix_embeds.detach().clone())
        return original(prefix, suffix_embeds, *args, **kwargs)

    monkeypatch.setattr(backend, method, wrapper)
    return calls


def test_kept_patches_are_real_image_embeddings_and_reach_the_final_decode(tiny_backends, monkeypatch):
    backend = tiny_backends["qwen2_5_vl"]
    config = dataclasses.replace(FAST, mode="full", readout="likelihood", num_steps=4)
    generated = _spy(monkeypatch, backend, "generate")
    session = Reasoner(backend, config).start(_request())
    for _ in session.iterate():
        pass
    inspection = session.result()
    assert inspection.injected, "this seed keeps patches; the test needs at least one"
    [suffix] = generated
    tail = backend.followup_ids(f"{inspection.answer}. {inspection.answer_text}", config.rationale_prompt)
    assert suffix.shape[1] == config.num_latent_tokens + len(inspection.injected) + len(tail)
    image_pad = backend.embed_tokens(torch.tensor([backend.model.config.image_token_id]))[0]
    query = session.query
    for patch in inspection.injected:
        real = query.embeddings[patch.token_index].to(suffix.dtype)
        assert any(torch.allclose(row, real, atol=1e-6) for row in suffix[0])
        assert not torch.allclose(real, image_pad)
        assert tuple(query.boxes[patch.token_index].tolist()) == patch.box


def test_best_latents_are_the_evaluated_ones(tiny_backends):
    session = Reasoner(tiny_backends["qwen2_5_vl"], dataclasses.replace(FAST, num_steps=5)).start(_request())
    for _ in session.iterate():
        pass
    state = session.state
    with torch.no_grad():
        again = session._evaluate([session._spec(state.best_latents, state.best_patches)]).rewards[0]
    assert float(again) == pytest.approx(state.best_reward, abs=1e-6)
    assert state.best_reward == max(s.best_reward for s in state.steps)


def test_autograd_mode_updates_the_latents(tiny_backends):
    backend = tiny_backends["qwen2_5_vl"]
    session = Reasoner(backend, dataclasses.replace(FAST, optimizer="autograd", num_steps=2)).start(_request())
    initial = session.state.latents.clone()
    for _ in session.iterate():
        pass
    assert not torch.allclose(session.state.latents, initial)


@pytest.mark.parametrize("prior_mode, weight", [("anomaly", 0.5), ("mix", 0.9)])
def test_an_anomaly_prior_steers_the_injected_patches(tiny_backends, prior_mode, weight):
    """With the visual memory's prior peaked on one token, that token is proposed first."""
    backend = tiny_backends["qwen2_5_vl"]
    config = dataclasses.replace(
        FAST, mode="latent", readout="likelihood", num_steps=2, injection_prior=prior_mode, prior_weight=weight
    )

    def prior(boxes):
        values = torch.zeros(boxes.shape[0])
        values[5] = 1.0
        return values

    session = Reasoner(backend, config).start(dataclasses.replace(_request(), patch_prior=prior))
    next(session.iterate())
    assert all(proposal[0] == 5 for proposal in session.state.proposals[:1])
    plain = Reasoner(backend, dataclasses.replace(config, injection_prior="attention")).start(
        dataclasses.replace(_request(), patch_prior=prior)
    )
    assert plain.prior is None  # the prior is used only when asked for
