"""`reason-iad train-tiny`'s flags: bad values are refused before anything is written, good ones reach the run."""

import pytest

from reason_iad.cli import main


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--max-steps", "-1"], "--max-steps must be 0"),
        (["--minutes", "0"], "--minutes and --clip-minutes must be positive"),
        (["--recipe", "knowledge_rate=lots"], "the value must be a number"),
        (["--subtask-weight", "Guessing=3"], "--subtask-weight must look like"),
    ],
)
def test_bad_flags_get_one_message_and_write_nothing(tmp_path, capsys, flags, message):
    out = tmp_path / "run"
    assert main(["train-tiny", "--what", "inspector", "--out", str(out), *flags]) != 0
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_max_steps_and_the_recipe_reach_the_training_run(tmp_path, monkeypatch):
    import reason_iad.training.inspector as inspector

    seen = {}

    def fake_train(out, settings, recipe, **kwargs):
        seen.update(settings=settings, recipe=recipe)
        return {"steps": settings.max_steps, "folder": str(out / "model")}

    monkeypatch.setattr(inspector, "train_inspector", fake_train)
    flags = ["--max-steps", "7", "--minutes", "30", "--recipe", "latent_noise=0.3", "--recipe", "permute_share=0.6"]
    assert main(["train-tiny", "--what", "inspector", "--out", str(tmp_path), *flags]) == 0
    assert seen["settings"].max_steps == 7 and seen["settings"].minutes == 30
    assert seen["recipe"].latent_noise == 0.3 and seen["recipe"].permute_share == 0.6
