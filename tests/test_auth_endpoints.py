"""Every write endpoint of the studio refuses anonymous and non-curator calls made directly through the HTTP API.

The studio is launched twice on 127.0.0.1: with password logins (`--auth`, `--curators ana`) and as a Space with
Hugging Face OAuth (a signed-in session is a cookie signed the way Gradio's session middleware signs it). The
endpoints are enumerated from the Blocks; all but an explicit list of read-only ones are writes, and each is
called directly, bypassing the UI (a hidden, `api_visibility="private"` endpoint is still callable by name).
A new write endpoint without the curator check fails here.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import tempfile
import time
from pathlib import Path

import gradio as gr
import httpx
import pytest
from PIL import Image

from demo.studio import build_studio, launch_options
from knowledge_helpers import make_store
from ports import free_port
from reason_iad.annotations import AnnotationStore
from reason_iad.config import AppConfig, StudioConfig
from reason_iad.memory.exemplars import ExemplarStore
from reason_iad.pipeline import Pipeline

pytestmark = pytest.mark.slow  # launches two studios and calls every endpoint several times (~30 s)

# Endpoints that only read (or compute an answer); everything else must check the curator. Keys are the handler's
# `module:qualname`; review any addition here as carefully as the handler itself.
READ_ONLY = {
    "demo.tabs.inspect:_wire_gallery.<locals>.pick_example",
    "demo.tabs.inspect:_wire_pins.<locals>.refresh_pins",
    "demo.tabs.inspect:_wire_run.<locals>.inspect",
    "demo.tabs.inspect:_wire_explanation.<locals>.restyle",  # layers, opacity, colormap of the explanation
    "demo.tabs.inspect:_wire_explanation.<locals>.replay",  # the replay frame
    "demo.tabs.inspect:_wire_explanation.<locals>.highlight",  # a clicked evidence row's patch, emphasised
    "demo.tabs.inspect:_wire_presets.<locals>.apply",  # a preset sets three sliders
    "demo.tabs.inspect:_wire_presets.<locals>.follow",  # the sliders name their preset
    "demo.tabs.annotate:annotate_tab.<locals>.open_last",  # the last inspection into the editor
    "demo.handlers:StudioHandlers.run_card",  # the visitor's own finished run as a JSON file
    "demo.handlers:StudioHandlers.list_entries",
    "demo.tabs.knowledge:_wire_editor.<locals>.load_row",
    "demo.handlers:StudioHandlers.search",
    "demo.handlers:StudioHandlers.history",
    "demo.handlers:StudioHandlers.diff",
    "demo.knowledge_panels:TransferHandlers.version_rows",
    "demo.knowledge_panels:ExemplarHandlers.show",
    "demo.threshold_panel:ThresholdHandlers.view",  # the histogram and the preview of a proposed threshold
    "demo.tabs.annotate:annotate_tab.<locals>.copy_answer",  # copies the last answer into the form
    "demo.tabs.annotate:annotate_tab.<locals>.open_image",  # decodes an upload into the session's editor
    "demo.annotation:AnnotationHandlers.annotation_rows",
    "demo.tabs.compare:compare_tab.<locals>.run_comparison",
    "demo.tabs.compare:compare_tab.<locals>.refreshed",
    "gradio.components.login_button:LoginButton._check_login_status",  # Gradio's own, with OAuth
}
CURATOR, READER, PASSWORD = "ana", "bo", "pw-123"
REFUSED = re.compile(r"log in as a curator|is not on the curator list")
EXPORTS = r"reason-iad-(knowledge|annotations)-"  # the folders the studio's exports are written into


def handler_key(block_fn) -> str | None:
    """`module:qualname` of the function behind an endpoint (unwrapping `guarded`), None when there is none."""
    fn = block_fn.fn
    if fn is None:
        return None
    fn = getattr(fn, "__wrapped__", fn)
    return f"{fn.__module__}:{fn.__qualname__}"


def write_endpoints(blocks: gr.Blocks) -> dict[str, str]:
    """{api name: handler key} of every endpoint that is not known to be read-only."""
    return {f.api_name: key for f in blocks.fns.values() if (key := handler_key(f)) and key not in READ_ONLY}


# ---------------------------------------------------------------------------------------------- the studios
def _pipeline(folder: Path) -> Pipeline:
    exemplars = ExemplarStore(folder)
    exemplars.add(Image.new("RGB", (32, 32), (120, 90, 60)), "Test", "wood", "seed")
    return Pipeline(None, AppConfig(), make_store(folder), exemplars, AnnotationStore(folder))


def _launch(blocks: gr.Blocks, port: int, auth=None) -> str:
    config = AppConfig(studio=StudioConfig(port=port))
    blocks.queue().launch(**launch_options(config, auth) | {"prevent_thread_lock": True, "quiet": True})
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def password_studio(tmp_path_factory):
    """`app.py --auth ana:pw,bo:pw --curators ana`: everybody logs in, only ana writes."""
    pipeline = _pipeline(tmp_path_factory.mktemp("password") / "kb")
    blocks = build_studio(AppConfig(), pipeline, examples=[], curators={CURATOR}, auth_required=True)
    url = _launch(blocks, free_port(), auth=[(CURATOR, PASSWORD), (READER, PASSWORD)])
    yield blocks, pipeline, url
    blocks.close()


@pytest.fixture(scope="module")
def oauth_studio(tmp_path_factory):
    """A Space with `hf_oauth: true` and `--curators ana`: anyone may open it, only ana writes."""
    import gradio.oauth

    with pytest.MonkeyPatch.context() as patch:
        for name, value in (
            ("OAUTH_CLIENT_ID", "test-client"),
            ("SPACE_ID", "reason-iad/studio"),
            ("SYSTEM", "spaces"),
        ):
            patch.setenv(name, value)
        for name, value in (
            ("OAUTH_CLIENT_ID", "test-client"),
            ("OAUTH_CLIENT_SECRET", "secret"),
            ("OAUTH_SCOPES", "openid profile"),
            ("OPENID_PROVIDER_URL", "https://huggingface.co"),
        ):
            patch.setattr(gradio.oauth, name, value)
        pipeline = _pipeline(tmp_path_factory.mktemp("oauth") / "kb")
        blocks = build_studio(AppConfig(), pipeline, examples=[], curators={CURATOR})
        url = _launch(blocks, free_port())
        yield blocks, pipeline, url
        blocks.close()


# ---------------------------------------------------------------------------------------------- HTTP clients
def password_client(url: str, user: str | None) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=60)
    if user is not None:
        client.post("/login", data={"username": user, "password": PASSWORD}).raise_for_status()
    return client


def oauth_client(url: str, user: str | None) -> httpx.Client:
    """A client whose session says `user` signed in with Hugging Face (None: nobody signed in)."""
    import gradio.oauth
    from itsdangerous import TimestampSigner

    client = httpx.Client(base_url=url, timeout=60)
    if user is not None:
        info = {
            "access_token": "t",
            "scope": "openid profile",
            "expires_at": int(time.time()) + 600,
            "userinfo": {
                "name": user.title(),
                "preferred_username": user,
                "picture": "",
                "profile": f"https://huggingface.co/{user}",
            },
        }
        secret = hashlib.sha256(((gradio.oauth.OAUTH_CLIENT_SECRET or "") + "-v4").encode()).hexdigest()
        payload = base64.b64encode(json.dumps({"oauth_info": info}).encode())
        client.cookies.set("session", TimestampSigner(secret).sign(payload).decode())
    return client


def upload(client: httpx.Client, name: str, content: bytes) -> dict:
    """A file input's payload; a caller not allowed to upload gets one naming a file that was never uploaded."""
    response = client.post("/gradio_api/upload", files={"files": (name, content)})
    path = response.json()[0] if response.status_code == 200 else name
    return {"path": path, "orig_name": name, "meta": {"_type": "gradio.FileData"}}


def call(client: httpx.Client, api_name: str, data: list) -> tuple[int, str, object]:
    """(HTTP status, "complete"/"error"/"", data) of one direct call to an endpoint, by its API name."""
    started = client.post(f"/gradio_api/call/{api_name}", json={"data": data})
    if started.status_code != 200:
        return started.status_code, "", started.text
    event, payload = "", None
    with client.stream("GET", f"/gradio_api/call/{api_name}/{started.json()['event_id']}") as stream:
        for line in stream.iter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event in ("complete", "error"):
                payload = json.loads(line.removeprefix("data: "))
                break
    return 200, event, payload


def png(colour=(200, 180, 150)) -> bytes:
    """A small part: one colour with a darker square (a flat image is the editor's blank canvas, refused)."""
    from reason_iad.images import png_bytes

    picture = Image.new("RGB", (48, 48), colour)
    picture.paste((90, 70, 50), (10, 10, 20, 20))
    return png_bytes(picture)


def payloads(client: httpx.Client, pipeline: Pipeline) -> dict[str, list]:
    """Inputs that would write if the caller were allowed to, per handler (default inputs for any other)."""
    image = upload(client, "normal.png", png())
    jsonl = json.dumps(
        {
            "id": "mine/gear/chip",
            "dataset": "Mine",
            "category": "gear",
            "defect": "chip",
            "title": "Chip",
            "text": "A chipped tooth.",
        }
    )
    exemplar = pipeline.exemplars.list("wood", "Test")[0].id
    editor, exemplars, transfer = (
        f"demo.tabs.knowledge:{panel}.<locals>." for panel in ("_wire_editor", "_exemplars", "_transfer")
    )  # the Knowledge tab's edit, exemplar, transfer panels
    return {
        f"{editor}save_entry": ["test/wood/scratch", "Scratch", "An edited text."],
        f"{editor}add_entry": ["Mine", "gear", "dent", "Dent", "A dent in the rim."],
        f"{editor}delete_entry": ["test/wood/hole", True],
        f"{editor}restore_version": [1],
        f"{exemplars}add_exemplar_fn": [image, "Test / wood"],
        f"{exemplars}remove_exemplar_fn": [exemplar, "Test / wood"],
        f"{transfer}import_file": [upload(client, "knowledge.jsonl", jsonl.encode()), False],
        f"{transfer}export_file": ["jsonl", None],
        "demo.tabs.annotate:annotate_tab.<locals>.save_annotation": [
            {"background": image, "layers": [], "composite": image},
            "normal",
            "Annotations",
            "wood",
            "",
            "",
            "",
            "",
            False,
        ],
        "demo.tabs.annotate:annotate_tab.<locals>.export_annotations": ["mmad"],
        "demo.tabs.compare:compare_tab.<locals>.load_model": ["/no/such/model", "none"],
    }


def default_inputs(block_fn) -> list:
    """The API inputs of an endpoint nobody wrote a payload for: each component's initial value."""
    return [
        None if isinstance(b, (gr.File, gr.Image)) else getattr(b, "value", None)
        for b in block_fn.inputs
        if not b.skip_api
    ]


def written(pipeline: Pipeline) -> tuple:
    """Everything a write could change: knowledge version, exemplars, annotations, export files."""
    pipeline.store.refresh()
    exports = [p for p in Path(tempfile.gettempdir()).glob("reason-iad-*") if re.match(EXPORTS, p.name)]
    return pipeline.store.version, len(pipeline.exemplars.list()), len(pipeline.annotations.list()), len(exports)


def calls(blocks, pipeline, client):
    """(api name, handler key, (status, event, data), written before, written after) for every write endpoint."""
    inputs = payloads(client, pipeline)
    by_name = {f.api_name: f for f in blocks.fns.values()}
    for api_name, key in sorted(write_endpoints(blocks).items()):
        before = written(pipeline)
        result = call(client, api_name, inputs.get(key) or default_inputs(by_name[api_name]))
        yield api_name, key, result, before, written(pipeline)


# ---------------------------------------------------------------------------------------------- the tests
def test_the_read_only_list_names_real_endpoints_and_writes_are_found(password_studio, oauth_studio):
    keys = {handler_key(f) for blocks, *_ in (password_studio, oauth_studio) for f in blocks.fns.values()}
    assert READ_ONLY <= keys, f"stale read-only entries: {READ_ONLY - keys}"
    writes = set(write_endpoints(password_studio[0]).values())
    assert writes == set(write_endpoints(oauth_studio[0]).values())
    assert (
        len(writes) >= 11
        and {
            "demo.tabs.knowledge:_wire_editor.<locals>.add_entry",
            "demo.tabs.annotate:annotate_tab.<locals>.save_annotation",
        }
        <= writes
    )


def test_password_login_refuses_anonymous_calls_to_every_endpoint(password_studio):
    blocks, pipeline, url = password_studio
    client = password_client(url, None)
    for api_name, key, (status, event, data), before, after in calls(blocks, pipeline, client):
        assert status == 401 and after == before, (api_name, key, status, event, data)


@pytest.mark.parametrize("mode, user", [("password", READER), ("oauth", None), ("oauth", "mallory")])
def test_every_write_endpoint_refuses_non_curators_and_writes_nothing(mode, user, request):
    blocks, pipeline, url = request.getfixturevalue(f"{mode}_studio")
    client = (password_client if mode == "password" else oauth_client)(url, user)
    for api_name, key, (status, event, data), before, after in calls(blocks, pipeline, client):
        assert status == 200 and event == "error", (api_name, key, status, event, data)
        assert REFUSED.search(str(data)) and after == before, (api_name, key, data, before, after)
    assert call(client, "search_knowledge", ["scratch", "fts", ""])[1] == "complete"  # reading is still allowed


@pytest.mark.parametrize("mode", ["password", "oauth"])
def test_the_curator_passes_the_same_checks(mode, request):
    blocks, pipeline, url = request.getfixturevalue(f"{mode}_studio")
    client = (password_client if mode == "password" else oauth_client)(url, CURATOR)
    wrote = []
    for api_name, key, (status, event, data), before, after in calls(blocks, pipeline, client):
        assert status == 200 and not REFUSED.search(str(data)), (api_name, key, event, data)
        wrote.append(api_name) if after != before else None
    assert len(wrote) >= 10, wrote  # every payload but load_model's (a model path that does not exist) wrote
    assert pipeline.store.changes()[-1].author == CURATOR
