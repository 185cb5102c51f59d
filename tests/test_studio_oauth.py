"""Hugging Face sign-in on a Space: Gradio injects the OAuth profile into every write, and curators are checked.

No network: the session carries the `oauth_info` Gradio's OAuth routes would store after a real sign-in, and the
write handler is called through Gradio's own special-argument injection (`gradio.helpers.special_args`).
"""

import time
import types

import gradio as gr
import pytest
from gradio.helpers import special_args

from demo.common import author_of
from demo.studio import build_studio
from knowledge_helpers import make_store
from reason_iad.config import AppConfig
from reason_iad.pipeline import Pipeline


def _signed_in(username: str | None):
    session = {}
    if username:
        userinfo = {
            "name": username.title(),
            "preferred_username": username,
            "profile": f"https://huggingface.co/{username}",
            "picture": "",
        }
        session["oauth_info"] = {
            "access_token": "t",
            "scope": "openid profile",
            "expires_at": time.time() + 600,
            "userinfo": userinfo,
        }
    return types.SimpleNamespace(session=session, username=None)


@pytest.fixture
def studio(tiny_backends, tmp_path, monkeypatch):
    import gradio.oauth

    monkeypatch.setenv("OAUTH_CLIENT_ID", "test-client")  # what a Space with `hf_oauth: true` sets
    monkeypatch.setenv("SPACE_ID", "reason-iad/studio")
    monkeypatch.setenv("SYSTEM", "spaces")
    for name, value in (
        ("OAUTH_CLIENT_ID", "test-client"),
        ("OAUTH_CLIENT_SECRET", "secret"),
        ("OAUTH_SCOPES", "openid profile"),
        ("OPENID_PROVIDER_URL", "https://huggingface.co"),
    ):
        monkeypatch.setattr(gradio.oauth, name, value)
    config = AppConfig()
    pipeline = Pipeline(tiny_backends["qwen2_5_vl"], config, make_store(tmp_path / "kb"))
    return build_studio(config, pipeline, examples=[], curators={"ana"}), pipeline


def _add_knowledge(studio, request, defect):
    fn = next(f for f in studio.fns.values() if f.api_name == "add_knowledge").fn
    inputs, *_ = special_args(fn, ["Test", "wood", defect, "Knot", "A dark round knot."], request)
    return fn(*inputs)


def test_a_signed_in_curator_writes_under_their_hugging_face_name(studio):
    blocks, pipeline = studio
    assert any(isinstance(block, gr.LoginButton) for block in blocks.blocks.values())
    status = _add_knowledge(blocks, _signed_in("ana"), "knot")
    assert status.startswith("Added test/wood/knot")
    assert pipeline.store.changes()[-1].author == "ana"


@pytest.mark.parametrize("user, message", [(None, "log in"), ("mallory", "curator list")])
def test_anonymous_or_unlisted_accounts_cannot_write(studio, user, message):
    blocks, pipeline = studio
    before = pipeline.store.version
    with pytest.raises(gr.Error, match=message):
        _add_knowledge(blocks, _signed_in(user), "knot")
    assert pipeline.store.version == before


def test_with_oauth_and_no_curator_list_any_signed_in_account_writes_but_anonymous_cannot(
    tiny_backends, tmp_path, studio
):
    config = AppConfig()
    pipeline = Pipeline(tiny_backends["qwen2_5_vl"], config, make_store(tmp_path / "open"))
    blocks = build_studio(config, pipeline, examples=[])  # OAuth env still set by the `studio` fixture
    with pytest.raises(gr.Error, match="log in"):
        _add_knowledge(blocks, _signed_in(None), "knot")
    assert _add_knowledge(blocks, _signed_in("bo"), "knot").startswith("Added")
    assert pipeline.store.changes()[-1].author == "bo"


def test_author_prefers_the_oauth_profile_over_the_password_login():
    profile = gr.OAuthProfile({"name": "Ana", "preferred_username": "ana", "profile": "", "picture": ""})
    assert author_of(types.SimpleNamespace(username="bo"), profile) == "ana"
    assert author_of(types.SimpleNamespace(username="bo"), None) == "bo"
    assert author_of(None, None) is None
