"""Launch the Reason-IAD studio: parse flags/env -> AppConfig -> build the Gradio Blocks -> launch.

This is also the Hugging Face Spaces entry (`app_file: app.py`). Run `python app.py --help` for the flags;
every flag has an environment variable (in brackets in the help) so a Space can be configured without code.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from reason_iad.config import AppConfig, BackendConfig, StudioConfig
from reason_iad.errors import UserError


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Flags of the studio; defaults come from the environment so Spaces can set them."""
    env = os.environ.get
    parser = argparse.ArgumentParser(description="Reason-IAD Studio (Gradio).")
    parser.add_argument("--host", default=env("GRADIO_SERVER_NAME", "127.0.0.1"), help="[GRADIO_SERVER_NAME]")
    parser.add_argument(
        "--port", type=int, default=int(env("GRADIO_SERVER_PORT", "7860")), help="[GRADIO_SERVER_PORT]"
    )
    parser.add_argument(
        "--model",
        default=env("REASON_IAD_MODEL", "embedded"),
        help="'embedded' (the small demonstration model), a local folder or a Hugging Face id [REASON_IAD_MODEL]",
    )
    parser.add_argument(
        "--quantization",
        choices=["none", "4bit", "8bit"],
        default=env("REASON_IAD_QUANTIZATION", "none"),
        help="[REASON_IAD_QUANTIZATION]",
    )
    parser.add_argument("--device", default=env("REASON_IAD_DEVICE", "auto"), help="auto/cpu/cuda [REASON_IAD_DEVICE]")
    parser.add_argument("--config", help="a JSON file written by AppConfig.to_json(); flags given override it")
    parser.add_argument("--share", action="store_true", help="ask Gradio for a public share link")
    return parser.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> AppConfig:
    """Map parsed flags onto the config dataclasses (the only place flags become config)."""
    base = AppConfig.load(args.config) if args.config else AppConfig()
    backend = BackendConfig(
        model=args.model, quantization=args.quantization, device=args.device, dtype=base.backend.dtype
    )
    studio = StudioConfig(host=args.host, port=args.port, share=args.share)
    return AppConfig(backend=backend, reasoning=base.reasoning, knowledge=base.knowledge, studio=studio)


def main(argv: Sequence[str] | None = None) -> int:
    """Build and launch the studio; bad flags or config print one line and return 2."""
    try:
        config = config_from_args(parse_args(argv))
    except (UserError, OSError) as err:
        print(f"app.py: error: {err}", file=sys.stderr)
        return 2
    from demo.studio import build_studio, launch_options

    studio = build_studio(config)
    studio.queue(default_concurrency_limit=1).launch(**launch_options(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
