"""What a visitor to a CPU Space sees in the first 60 s: `python app.py` on a fresh data folder, then a browser.

    .venv/bin/python scripts/first-visit.py [--seconds 60] [--out test-artifacts]

Starts the studio on the embedded default exactly as a Space does (a fresh, empty data folder: the knowledge base,
exemplars and visual memory are created on this first start), opens it in headless chromium at 1440x900 the moment
the server answers, clicks the first gallery example and presses Inspect with the default settings, and prints when
each thing became visible, measured from the process start. Screenshots at the page's first paint, at the answer
and at the end of the window go to `--out` (first-visit-*.png).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def free_port() -> int:
    """A free local TCP port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_server(url: str, process: subprocess.Popen, limit: float) -> None:
    """Return once `url` answers; exit when the process dies or `limit` seconds pass."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the studio exited with {process.returncode} before it answered")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.25)
    raise SystemExit(f"the studio did not answer within {limit:.0f} s")


def main() -> int:
    """Run the measurement; prints one line per milestone."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="the window measured (default 60)")
    parser.add_argument("--out", default=str(ROOT / "test-artifacts"), help="folder for the screenshots")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("Debian's chromium is needed (bash scripts/ensure-browser.sh)")
    from playwright.sync_api import sync_playwright

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    port, data = free_port(), tempfile.mkdtemp(prefix="reason-iad-first-visit-")
    env = os.environ | {"REASON_IAD_DATA_DIR": data, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    started = time.monotonic()
    marks: list[tuple[str, float]] = []

    def mark(what: str) -> None:
        marks.append((what, time.monotonic() - started))
        print(f"{marks[-1][1]:6.1f} s  {what}", flush=True)

    process = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_for_server(url, process, limit=300)
        mark("server answers")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=FLAGS)
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(url, wait_until="load")
            page.wait_for_selector("#run", timeout=120_000)
            mark("page interactive (Inspect tab, gallery)")
            page.screenshot(path=str(out / "first-visit-1-open.png"))
            page.locator("#example-gallery button.thumbnail-item").first.click()
            page.wait_for_function(
                "() => document.querySelector('#knowledge-pins')?.innerText.includes('/')", timeout=120_000
            )
            mark("first example loaded, its knowledge previewed")
            page.click("#run")
            page.wait_for_function(
                "() => document.querySelector('#answer')?.innerText.includes('Step ')", timeout=180_000
            )
            mark("first reasoning step on screen")
            page.wait_for_function(
                "() => document.querySelector('#answer')?.innerText.includes('Answer:')", timeout=180_000
            )
            mark("answer, evidence and patches on screen")
            page.screenshot(path=str(out / "first-visit-2-answer.png"))
            left = args.seconds - (time.monotonic() - started)
            if left > 0:
                page.wait_for_timeout(left * 1000)
            page.screenshot(path=str(out / "first-visit-3-end.png"))
            answer = page.locator("#answer").inner_text().splitlines()
            browser.close()
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)
    within = [what for what, at in marks if at <= args.seconds]
    print(f"\nwithin {args.seconds:.0f} s: {len(within)} of {len(marks)} milestones; answer panel: {answer[:3]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
