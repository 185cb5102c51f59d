"""Training pieces: the schedule, the examples' layout, and (slow) a short run from scratch lowering the loss."""

import json

import numpy as np
import pytest

from reason_iad.training.data import IGNORE, BatchPlan, DataRecipe, ExampleEncoder, knowledge_texts
from reason_iad.training.inspector import IMAGE_TOKENS, TrainSettings, build_model, learning_rate
from reason_iad.training.tokenizer import train_tokenizer


def test_learning_rate_warms_up_then_decays_with_time():
    settings = TrainSettings(minutes=1.0, learning_rate=1e-3, warmup_steps=10, final_lr_fraction=0.05)
    assert learning_rate(settings, 0, 0.0) == pytest.approx(1e-4)
    assert learning_rate(settings, 50, 0.0) == pytest.approx(1e-3)
    assert learning_rate(settings, 50, 30.0) == pytest.approx(1e-3 * (0.05 + 0.95 * 0.5))
    assert learning_rate(settings, 50, 600.0) == pytest.approx(5e-5)


def test_example_supervises_only_the_answer_and_matches_the_inference_prompt():
    from reason_iad.mmad import MMADQuestion
    from reason_iad.synth.render import render_sample
    from reason_iad.training.data import PoolImage

    tokenizer = train_tokenizer()
    _, processor = build_model(tokenizer, seed=0)
    recipe = DataRecipe(evidence_rate=1.0, rationale_rate=0.0)
    encoder = ExampleEncoder(processor, recipe, IMAGE_TOKENS)
    sample = render_sample("pill", "crack", 3, 224)
    item = PoolImage(
        sample.image,
        sample.facts,
        np.zeros(16, dtype=np.int64),
        evidence="verdict: anomalous; most anomalous region: top, score 0.91",
    )
    question = MMADQuestion(
        Question="Is there any defect in the object?",
        Options={"A": "Yes.", "B": "No."},
        Answer="A",
        type="Anomaly Detection",
    )
    knowledge = [text for _, text in knowledge_texts()["pill"]]
    example = encoder.encode(item, question, BatchPlan(False, True, True), None, knowledge, np.random.default_rng(0))
    answer = [t for t in example.labels if t != IGNORE]
    assert tokenizer.decode(answer) == "Yes.<|im_end|>"
    text = tokenizer.decode(example.ids)
    assert text.count("<|image_pad|>") == IMAGE_TOKENS and text.count("<|latent|>") == recipe.num_latent_tokens
    assert "Visual memory evidence: verdict: anomalous; most anomalous region: top" in text
    assert "Description:" in text
    assert text.index("<|latent|>") < text.index("<|im_start|>assistant")


@pytest.mark.slow
def test_short_training_from_scratch_lowers_the_loss(tmp_path):
    from reason_iad.training.inspector import train_inspector

    recipe = DataRecipe(normals_per_category=2, defects_per_category=4, templates_per_category=2)
    settings = TrainSettings(minutes=10, max_steps=40, warmup_steps=5, batch_size=4)
    summary = train_inspector(tmp_path, settings, recipe)
    losses = [json.loads(line)["loss"] for line in (tmp_path / "loss.jsonl").read_text().splitlines()]
    assert summary["steps"] == 40 and (tmp_path / "model" / "model.safetensors").is_file()
    assert np.mean(losses[-8:]) < 0.7 * np.mean(losses[:4])


@pytest.mark.slow
def test_a_fine_tune_keeps_the_tokenizer_of_the_weights_it_starts_from(tmp_path):
    from transformers import AutoTokenizer

    from reason_iad.training.inspector import save_inspector, train_inspector

    base = train_tokenizer(vocab_size=1500)  # not what the recipe's corpus gives today
    model, processor = build_model(base, seed=0)
    save_inspector(model, processor, tmp_path / "base")
    recipe = DataRecipe(normals_per_category=1, defects_per_category=2, templates_per_category=1)
    settings = TrainSettings(minutes=10, max_steps=2, warmup_steps=1, batch_size=2)
    train_inspector(tmp_path / "tuned", settings, recipe, warm_start=tmp_path / "base")
    tuned = AutoTokenizer.from_pretrained(tmp_path / "tuned" / "model", local_files_only=True)
    assert tuned.get_vocab() == base.get_vocab() != train_tokenizer().get_vocab()
    checkpoint = tmp_path / "tuned" / "checkpoint.pt"  # a third phase from the second's checkpoint, not a folder
    train_inspector(tmp_path / "third", settings, recipe, warm_start=checkpoint)
    third = AutoTokenizer.from_pretrained(tmp_path / "third" / "model", local_files_only=True)
    assert third.get_vocab() == base.get_vocab()


def test_retrieval_like_knowledge_ranks_defects_then_the_normal_entry():
    from reason_iad.synth.render import render_sample
    from reason_iad.training.data import ExampleSampler, ImagePool

    pool = ImagePool([], {}, knowledge_texts())
    facts = render_sample("carpet", "cut", 3, 96).facts
    pairs = dict(knowledge_texts()["carpet"])  # normal + 4 defect entries
    firsts = []
    for seed in range(200):
        texts = ExampleSampler(pool, None, DataRecipe(retrieval_top1_rate=0.7)).knowledge_for(
            facts, np.random.default_rng(seed)
        )
        if len(texts) == len(pairs):  # MMAD's mode: every entry, normal first
            assert texts[0] == pairs["good"]
            continue
        assert len(texts) == 4 and texts[-1] == pairs["good"] and pairs["good"] not in texts[:3]
        assert pairs["cut"] in texts[:3]  # the tiny retriever's top-3 within a category is nearly always right
        firsts.append(texts[0] == pairs["cut"])
    assert 160 < len(firsts) < 200 and 0.6 < np.mean(firsts) < 0.85


def _entry_titles(texts):
    return [text.split("\n", 1)[0].strip().strip("<>") for text in texts]


@pytest.mark.parametrize("category, defect", [("carpet", "cut"), ("tile", "oil"), ("bottle", "contamination")])
def test_renamed_defects_agree_in_entries_options_and_rationale(category, defect):
    from reason_iad.synth.catalog import CATEGORIES
    from reason_iad.synth.questions import AnswerSlots, build_conversation
    from reason_iad.synth.render import render_sample
    from reason_iad.training.data import ExampleSampler, ImagePool, rationale

    pool = ImagePool([], {}, knowledge_texts())
    sampler = ExampleSampler(pool, None, DataRecipe(rename_rate=1.0, paraphrase_rate=0.0, all_entries_rate=0.0))
    facts = render_sample(category, defect, 3, 96).facts
    own = {d.name: d.title for d in CATEGORIES[category].defects}
    kept = 0
    for seed in range(30):
        rng = np.random.default_rng(seed)
        question = next(
            q for q in build_conversation(facts, rng, AnswerSlots(seed)) if q.type == "Defect Classification"
        )
        pairs = sampler.knowledge_pairs(facts, rng)
        renamed, texts, titles = sampler.vary(question, facts, pairs, rng)
        assert titles is not None and set(titles) == set(own) and len(set(titles.values())) == len(own)
        entry_titles = dict(zip([d for d, _ in pairs], _entry_titles(texts), strict=True))
        for d, title in titles.items():
            if d in entry_titles:
                assert entry_titles[d] == title  # every entry shown carries its defect's new name
        assert renamed.answer == question.answer and renamed.options[renamed.answer] == titles[defect]
        for letter, text in question.options.items():  # the category's other titles are renamed the same way
            match = [d for d, t in own.items() if t == text]
            if match:
                assert renamed.options[letter] == titles[match[0]]
        assert len(set(renamed.options.values())) == len(renamed.options)
        assert entry_titles["good"] == "Normal characteristics"
        assert rationale(facts, titles).startswith(f"Found: {titles[defect]} at the ")
        kept += sum(titles[d] == t for d, t in own.items())
        body = [text.split("Description:", 1)[1] for text in texts]
        assert body == [text.split("Description:", 1)[1] for _, text in pairs]  # descriptions untouched
    assert kept == 0  # no defect keeps its own title under renaming


@pytest.mark.parametrize("share", [0.0, 0.6, 1.0])
def test_the_permute_share_sets_how_often_renaming_exchanges_the_categorys_own_titles(share):
    from reason_iad.synth.catalog import CATEGORIES
    from reason_iad.training.knowledge_variants import rename_defects

    own = {d.title for d in CATEGORIES["carpet"].defects}
    real = {d.title for c in CATEGORIES.values() for d in c.defects}
    rng = np.random.default_rng(0)
    draws = [rename_defects("carpet", rng, share) for _ in range(400)]
    permuted = [set(titles.values()) == own for titles in draws]
    assert abs(np.mean(permuted) - share) < 0.07
    others = [titles for titles, p in zip(draws, permuted, strict=True) if not p]
    assert all(not set(titles.values()) & real for titles in others)  # made-up or code names only


def test_single_entry_lists_hold_the_true_entry_and_the_normal_one():
    from reason_iad.synth.render import render_sample
    from reason_iad.training.data import ExampleSampler, ImagePool

    pool = ImagePool([], {}, knowledge_texts())
    pairs = dict(knowledge_texts()["carpet"])
    defective, normal = render_sample("carpet", "cut", 3, 96).facts, render_sample("carpet", None, 3, 96).facts
    always = ExampleSampler(pool, None, DataRecipe(single_entry_rate=1.0, all_entries_rate=0.0))
    never = ExampleSampler(pool, None, DataRecipe(single_entry_rate=0.0, all_entries_rate=0.0))
    for seed in range(20):
        assert always.knowledge_for(defective, np.random.default_rng(seed)) == [pairs["cut"], pairs["good"]]
        assert len(always.knowledge_for(normal, np.random.default_rng(seed))) == 4  # no own entry: retrieval-like
        assert len(never.knowledge_for(defective, np.random.default_rng(seed))) == 4


def test_paraphrased_description_options_are_the_entries_sentences():
    from reason_iad.synth.questions import AnswerSlots, build_conversation
    from reason_iad.synth.render import render_sample
    from reason_iad.training.data import ExampleSampler, ImagePool
    from reason_iad.training.knowledge_variants import first_sentence

    knowledge = knowledge_texts()
    sampler = ExampleSampler(ImagePool([], {}, knowledge), None, DataRecipe(rename_rate=0.0, paraphrase_rate=1.0))
    facts = render_sample("carpet", "thread", 5, 96).facts
    rng = np.random.default_rng(1)
    question = next(q for q in build_conversation(facts, rng, AnswerSlots(1)) if q.type == "Defect Description")
    paraphrased, texts, titles = sampler.vary(question, facts, sampler.knowledge_pairs(facts, rng), rng)
    assert titles is None and paraphrased.answer == question.answer
    assert paraphrased.options[paraphrased.answer] == first_sentence(dict(knowledge["carpet"])["thread"])
    assert all(option not in question.options.values() for option in paraphrased.options.values())


def test_examples_without_knowledge_are_never_renamed():
    from reason_iad.synth.questions import AnswerSlots, build_conversation
    from reason_iad.synth.render import render_sample
    from reason_iad.training.data import ExampleSampler, ImagePool

    sampler = ExampleSampler(ImagePool([], {}, knowledge_texts()), None, DataRecipe(rename_rate=1.0))
    facts = render_sample("wood", "scratch", 2, 96).facts
    rng = np.random.default_rng(0)
    for question in build_conversation(facts, rng, AnswerSlots(0)):
        assert sampler.vary(question, facts, [], rng) == (question, [], None)


def test_a_rationale_follows_the_answer_given_and_never_opens_with_it():
    from reason_iad.synth.render import render_sample
    from reason_iad.training.data import rationale

    facts = render_sample("carpet", "cut", 3, 96).facts
    assert rationale(facts) == f"Found: Cut at the {facts.region} of the carpet."
    assert rationale(facts, answered=("Defect Classification", "Hole")).startswith("Found: Hole at the ")
    assert rationale(facts, answered=("Defect Localization", "Top left")) == "Found: Cut at the top left of the carpet."
    assert "looks normal" in rationale(facts, answered=("Anomaly Detection", "No."))
    assert "looks normal" not in rationale(facts, answered=("Anomaly Detection", "Yes."))


@pytest.mark.parametrize("defect", ["cut", None])
def test_answered_rationales_supervise_only_the_sentence_that_follows_a_random_answer(defect):
    from reason_iad.synth.questions import AnswerSlots, build_conversation
    from reason_iad.synth.render import render_sample

    tokenizer = train_tokenizer()
    _, processor = build_model(tokenizer, seed=0)
    recipe = DataRecipe(rationale_rate=1.0, answered_rationale_rate=1.0)
    encoder = ExampleEncoder(processor, recipe, IMAGE_TOKENS)
    facts = render_sample("carpet", defect, 3, 96).facts
    wrong = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        for question in build_conversation(facts, rng, AnswerSlots(seed)):
            ids, labels = encoder.answer_tokens(question, facts, None, rng)
            text = tokenizer.decode(ids)
            given, sentence = text.removesuffix("<|im_end|>").split("\n", 1)
            supervised = tokenizer.decode([t for t in labels if t != IGNORE])
            if question.type == "Defect Classification":
                assert sentence.startswith(f"Found: {given} at the ")  # names the type it answered
            if question.type == "Anomaly Detection":
                assert ("looks normal" in sentence) == (given == "No.")
            if given != question.options[question.answer]:
                wrong += 1
                assert question.type != "Anomaly Detection" or defect  # a normal image's AD is never answered
                assert not supervised.startswith(given) and supervised.startswith("\n")  # the answer is not taught
            if question.type.startswith("Object") or (question.type == "Anomaly Detection" and not defect):
                assert given == question.options[question.answer] and supervised.startswith(given)  # taught
    assert wrong > 10 if defect else wrong == 0
