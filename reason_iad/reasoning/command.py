"""`reason-iad infer IMAGE ...`: one inspection from the command line, printed or as JSON (`--json`)."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from reason_iad.cli_options import add_model_options, add_reasoning_options, backend_from_args, reasoning_from_args
from reason_iad.config import AppConfig, KnowledgeConfig, with_model_defaults
from reason_iad.errors import UserError


def register(subparsers) -> None:
    """Add the `infer` subcommand."""
    parser = subparsers.add_parser(
        "infer",
        help="inspect one image (answer, probabilities, rationale, injected patches, timings)",
        description="Ask one multiple-choice question about IMAGE. Without --question it asks MMAD's anomaly "
        'question ("Is there any defect in the object?" Yes/No).',
    )
    parser.add_argument("image", nargs="?", help="the query image (not needed with --replay)")
    parser.add_argument("--template", help="a normal image of the same category (one-shot)")
    parser.add_argument("--category", help="the category (selects entries of an MMAD-structured --knowledge file)")
    parser.add_argument("--question", help="the question text (needs at least two --option)")
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="A=TEXT",
        help="an option, repeated: A=Yes. (or 'A. Yes.', or just the text: lettered in order)",
    )
    parser.add_argument("--dataset", help="the dataset the category belongs to (scopes retrieval and templates)")
    parser.add_argument(
        "--knowledge", metavar="FILE", help="JSON texts, {title, text} objects or MMAD domain_knowledge.json"
    )
    parser.add_argument("--db", default="", help="knowledge base folder/URI (default: in the user data dir)")
    parser.add_argument(
        "--auto-template",
        action="store_true",
        help="use the category's nearest normal exemplar as the one-shot template",
    )
    add_model_options(parser)
    add_reasoning_options(parser)
    parser.add_argument("--json", action="store_true", help="print the whole Inspection (steps included) as JSON")
    parser.add_argument(
        "--card",
        metavar="OUT.json",
        help="also write the run card (model hashes, settings, "
        "knowledge ids and texts, image sha256, result) to OUT.json",
    )
    parser.add_argument(
        "--replay",
        metavar="CARD.json",
        help="rerun a run card with its settings and say whether "
        "the answer and probabilities match (exit code 0) or not (1); other settings are ignored, "
        "--db and --template may point to where things are now",
    )
    parser.add_argument(
        "--image",
        dest="replay_image",
        metavar="PATH",
        help="with --replay: the card's image (default: the path the card records)",
    )
    parser.set_defaults(handler=run)


def read_knowledge(path: str | None, category: str | None) -> tuple[str, ...]:
    """Knowledge texts from a JSON file (see --knowledge)."""
    if path is None:
        return ()
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"cannot read knowledge file {path}: {err}") from err
    if isinstance(data, list):
        texts = [item if isinstance(item, str) else _entry_text(item, path) for item in data]
    elif isinstance(data, dict):
        texts = _mmad_category_texts(data, category, path)
    else:
        raise UserError(f"{path}: expected a JSON list or MMAD's domain_knowledge structure")
    if not all(isinstance(t, str) and t.strip() for t in texts):
        raise UserError(f"{path}: knowledge entries must be non-empty texts")
    return tuple(texts)


def _entry_text(item, path: str) -> str:
    if not isinstance(item, dict) or not isinstance(item.get("text"), str):
        raise UserError(f"{path}: list items must be texts or objects with a 'text' field")
    return f"<{item['title']}>\n{item['text']}" if item.get("title") else item["text"]


def _mmad_category_texts(data: dict, category: str | None, path: str) -> list[str]:
    if category is None:
        raise UserError(f"{path} is MMAD-structured: pass --category to choose its entries")
    found = [
        entries
        for categories in data.values()
        if isinstance(categories, dict)
        for name, entries in categories.items()
        if name == category
    ]
    if not found or not isinstance(found[0], dict):
        raise UserError(f"{path} has no category {category!r}")
    return [str(text) for text in found[0].values()]


def run(args: argparse.Namespace) -> int:
    """Handler of `infer`: knowledge from --knowledge FILE, else retrieved from the knowledge base."""
    from reason_iad.images import load_image
    from reason_iad.knowledge import follow_store
    from reason_iad.pipeline import Pipeline
    from reason_iad.reasoning.report import format_inspection

    if args.replay:
        return run_replay(args)
    if args.image is None:
        raise UserError("infer needs an IMAGE (or --replay CARD.json)")
    if args.card and not Path(args.card).expanduser().resolve().parent.is_dir():
        raise UserError(f"--card: the folder of {args.card} does not exist")
    from reason_iad.reasoning.prompt import Question

    question = Question.parse(args.question, args.option or ())
    config = with_model_defaults(AppConfig(backend=backend_from_args(args), knowledge=KnowledgeConfig(db_uri=args.db)))
    config = dataclasses.replace(config, knowledge=follow_store(config.knowledge))  # a store keeps its embedders
    reasoning = reasoning_from_args(args, config.reasoning)
    config = dataclasses.replace(config, reasoning=reasoning)
    image = load_image(args.image, "image")
    template = load_image(args.template, "template") if args.template else None
    file_knowledge = read_knowledge(args.knowledge, args.category)
    use_store = reasoning.uses_knowledge and args.knowledge is None or args.auto_template or config.memory.enabled
    pipeline = Pipeline.load(config, with_knowledge=use_store)
    inspection = pipeline.inspect(  # with --knowledge FILE, its texts instead of retrieval; all else the same
        image,
        question=question,
        category=args.category,
        dataset=args.dataset,
        template=template,
        auto_template=args.auto_template,
        knowledge_texts=file_knowledge if args.knowledge is not None else None,
    )
    print(inspection.to_json() if args.json else format_inspection(inspection))
    if args.card:
        from reason_iad.replay import card_for
        from reason_iad.runcard import write_run_card

        card = card_for(
            pipeline,
            inspection,
            image,
            question,
            args.category,
            args.dataset,
            template,
            args.image,
            args.template or "",
            file_knowledge if args.knowledge is not None else None,
        )
        print(f"run card  {write_run_card(card, args.card)}")
    return 0


def run_replay(args: argparse.Namespace) -> int:
    """`infer --replay CARD.json`: rerun the card; exit code 0 when answer and probabilities match, else 1."""
    from reason_iad.images import load_image
    from reason_iad.pipeline import Pipeline
    from reason_iad.reasoning.report import format_inspection
    from reason_iad.replay import check_image, replay, replay_config
    from reason_iad.runcard import read_run_card

    card = read_run_card(args.replay)
    path = args.replay_image or args.image or card.image_path
    if not path:
        raise UserError("the card records no image path; pass --image")
    image = load_image(path, "image")
    check_image(card, image)  # before loading any model
    template = load_image(args.template, "template") if args.template else None
    config = replay_config(card, args.db)
    needs_store = card.knowledge_source == "store" or card.template_source not in ("", "given")
    pipeline = Pipeline.load(config, with_knowledge=needs_store or config.memory.enabled)
    result = replay(card, pipeline, image, template)
    print(format_inspection(result.inspection))
    print("\n".join(result.lines()))
    return 0 if result.matches else 1
