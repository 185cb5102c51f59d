"""`reason-iad kb` opens a knowledge base with the embedders it records; only a flag changes them, on purpose."""

import argparse

import app
from reason_iad.cli import main
from reason_iad.config import AppConfig, KnowledgeConfig, with_model_defaults
from reason_iad.knowledge import open_store, recorded_embedders
from reason_iad.knowledge.command import store_config


def _pipeline_store(path):
    """A knowledge base created as the pipeline creates one: with an image embedder (a fake stands in for CLIP)."""
    return open_store(KnowledgeConfig(db_uri=str(path), text_embedder="fake:32", image_embedder="fake:16"))


def test_every_kb_action_opens_the_store_with_its_recorded_embedders(tmp_path, capsys):
    db = tmp_path / "kb"
    count = _pipeline_store(db).count()
    assert main(["kb", "list", "--db", str(db)]) == 0
    assert f"({count} entries)" in capsys.readouterr().out
    assert main(["kb", "search", "scratch", "--db", str(db), "--mode", "semantic", "-k", "1"]) == 0
    assert main(["kb", "export", str(tmp_path / "out.jsonl"), "--db", str(db)]) == 0
    assert main(["kb", "versions", "--db", str(db)]) == 0
    assert "error" not in capsys.readouterr().err
    assert recorded_embedders(str(db)) == ("fake:32", "fake:16")  # nothing was re-embedded


def test_a_flag_naming_other_embedders_is_refused_and_reembed_changes_only_what_it_names(tmp_path, capsys):
    db = str(tmp_path / "kb")
    _pipeline_store(db)
    assert main(["kb", "list", "--db", db, "--image-embedder", "none"]) == 2
    err = capsys.readouterr().err.strip()
    assert "image embedder fake:16" in err and "kb reembed" in err and "\n" not in err
    assert recorded_embedders(db) == ("fake:32", "fake:16")
    assert main(["kb", "reembed", "--db", db, "--image-embedder", "none", "--author", "ana"]) == 0
    assert recorded_embedders(db) == ("fake:32", "")  # the text embedder it was not told to change stays
    assert main(["kb", "list", "--db", db]) == 0


def test_a_new_store_made_by_kb_gets_the_embedders_the_default_pipeline_opens_it_with(tmp_path):
    args = argparse.Namespace(db=str(tmp_path / "new"), text_embedder=None, image_embedder=None)
    default = with_model_defaults(AppConfig()).knowledge
    config = store_config(args)
    assert (config.text_embedder, config.image_embedder) == (default.text_embedder, default.image_embedder)
    assert default.image_embedder  # the embedded model retrieves by image
    explicit = store_config(argparse.Namespace(db=args.db, text_embedder="fake:8", image_embedder="none"))
    assert (explicit.text_embedder, explicit.image_embedder) == ("fake:8", "")


def test_the_studio_opens_an_existing_store_with_its_embedders_unless_clip_names_another(tmp_path):
    db = tmp_path / "kb"
    _pipeline_store(db)
    args = app.parse_args(["--db", str(db)])
    knowledge = app.with_store_embedders(app.config_from_args(args), args).knowledge
    assert (knowledge.text_embedder, knowledge.image_embedder) == ("fake:32", "fake:16")
    args = app.parse_args(["--db", str(db), "--clip", "tiny_clip"])
    assert app.with_store_embedders(app.config_from_args(args), args).knowledge.image_embedder == "tiny_clip"
    fresh = app.parse_args(["--db", str(tmp_path / "new")])
    assert app.with_store_embedders(app.config_from_args(fresh), fresh).knowledge.image_embedder == "tiny_clip"
