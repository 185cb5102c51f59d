"""Load check: 8 concurrent clients inspecting while 100 knowledge edits go through the API; nothing lost."""

import threading
import time

import pytest
from gradio_client import Client, handle_file

from demo.gallery import load_gallery
from demo.studio import build_studio, launch_options
from knowledge_helpers import make_store
from ports import free_port
from reason_iad.config import AppConfig, ReasoningConfig, StudioConfig
from reason_iad.paths import EXAMPLES_DIR
from reason_iad.pipeline import Pipeline

pytestmark = pytest.mark.slow



def test_eight_inspecting_clients_and_a_hundred_edits(tiny_backends, tmp_path):
    config = AppConfig(reasoning=ReasoningConfig(num_latent_tokens=2, num_steps=3),
                       studio=StudioConfig(port=free_port()))  # fmt: skip
    store = make_store(tmp_path / "kb")
    pipeline = Pipeline(tiny_backends["qwen2_5_vl"], config, store)
    studio = build_studio(config, pipeline, examples=load_gallery(EXAMPLES_DIR))
    studio.queue(default_concurrency_limit=4).launch(**launch_options(config) | {"prevent_thread_lock": True,
                                                                                "quiet": True})  # fmt: skip
    url = f"http://127.0.0.1:{config.studio.port}/"
    image = handle_file(str(sorted((EXAMPLES_DIR / "wood").glob("*.png"))[0]))
    errors, answers, started = [], [], time.perf_counter()

    def inspect():
        try:
            result = Client(url, verbose=False).predict(image=image, category="Test / wood", auto_template=False,
                                                        mode="full", num_latent_tokens=2, num_steps=3,
                                                        api_name="/inspect")  # fmt: skip
            answers.append(next(v for v in result if isinstance(v, str) and v.startswith("### Answer:")))
        except Exception as err:  # noqa: BLE001 - collected and asserted
            errors.append(err)

    def edit(worker):
        try:
            client = Client(url, verbose=False)
            for i in range(25):
                client.predict("Load", "gear", f"w{worker}-{i}", "Title", f"Edit {i} by {worker}.",
                               api_name="/add_knowledge")  # fmt: skip
        except Exception as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=inspect) for _ in range(8)] + [
        threading.Thread(target=edit, args=(w,)) for w in range(4)]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    elapsed = time.perf_counter() - started
    studio.close()
    print(f"8 inspections + 100 edits in {elapsed:.1f} s; {len(errors)} errors")
    assert errors == []
    assert len(answers) == 8 and all("### Answer:" in a for a in answers)
    assert len(store.list(dataset="Load")) == 100
    assert len([c for c in store.changes() if c.action == "add"]) == 100
