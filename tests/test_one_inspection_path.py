"""One inspection path: `infer`, `eval` and the studio give the same `Inspection` for the same inputs and settings.

The three entry points all go through `Pipeline.inspect_stream`; here the embedded default answers one question of
a small MMAD-format set three ways, over one database (the eval's own visual memory and knowledge base, which
`infer --db` and the studio open as they would open any store), and the answers, probabilities, retrieved
knowledge ids, kept patches and anomaly summaries must agree exactly.
"""

import dataclasses
import json

import pytest

from demo.handlers import ReasoningSettings, StudioHandlers
from reason_iad.cli import main
from reason_iad.config import AppConfig, KnowledgeConfig, with_model_defaults
from reason_iad.eval.aids import open_run_pipeline
from reason_iad.eval.answering import inspect_item, read_set
from reason_iad.eval.run_config import EvalRunConfig
from reason_iad.images import load_image
from reason_iad.pipeline import Pipeline
from reason_iad.synth import generate_dataset

pytestmark = pytest.mark.slow  # the embedded model three times, a memory bank and a knowledge base (~1 min)


def _same(inspection) -> dict:
    return {
        "answer": inspection["answer"],
        "option_probs": inspection["option_probs"],
        "knowledge": [k["id"] for k in inspection["knowledge"]],
        "injected": [(p["token_index"], list(p["box"]), p["step"]) for p in inspection["injected"]],
        "anomaly": inspection["anomaly"] and {k: v for k, v in inspection["anomaly"].items()},
        "template": inspection["template"],
    }


def test_infer_eval_and_the_studio_give_the_same_inspection(tmp_path, capsys):
    root = tmp_path / "data"
    generate_dataset(root, seed=11, per_category=2, image_size=128, categories=["carpet"], templates=4)
    defaults = with_model_defaults(AppConfig())
    reasoning = dataclasses.replace(defaults.reasoning, num_steps=3, num_latent_tokens=2, seed=5)
    config = EvalRunConfig.of(
        data=str(root), reasoning=reasoning, knowledge="retrieved", retriever=defaults.knowledge.image_embedder
    )
    eval_set = read_set(config)
    item = next(i for i in eval_set.items if not i.is_normal and i.template_path is not None)
    run = open_run_pipeline(config, eval_set)
    try:
        image, template = load_image(item.image_path), load_image(item.template_path)
        evaluated, _ = inspect_item(run.pipeline, item, image, template, ())
        options = [f"{letter}={text}" for letter, text in dict(item.question.options).items()]
        argv = ["infer", str(item.image_path), "--template", str(item.template_path), "--db", str(run.db)]
        argv += ["--category", item.category, "--dataset", item.dataset, "--question", item.question.text]
        argv += [a for option in options for a in ("--option", option)]
        argv += ["--steps", "3", "--latents", "2", "--seed", "5", "--json"]
        capsys.readouterr()
        assert main(argv) == 0
        inferred = json.loads(capsys.readouterr().out)

        app = with_model_defaults(AppConfig(knowledge=KnowledgeConfig(db_uri=str(run.db))))
        handlers = StudioHandlers(Pipeline.load(dataclasses.replace(app, reasoning=reasoning)), [])
        *_, studied = handlers.inspect(
            str(item.image_path),
            f"{item.dataset} / {item.category}",
            item.question.text,
            "\n".join(f"{letter}. {text}" for letter, text in dict(item.question.options).items()),
            ReasoningSettings.from_config(reasoning),
            template=str(item.template_path),
            auto_template=False,
        )
    finally:
        run.close()
    wanted = _same(json.loads(evaluated.to_json()))
    assert wanted["knowledge"] and wanted["anomaly"] is not None  # retrieval and the memory both took part
    assert _same(inferred) == wanted
    assert _same(json.loads(studied.to_json())) == wanted
