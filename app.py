"""Launch the Reason-IAD studio: parse flags/env -> AppConfig -> build the Gradio Blocks -> launch.

This is also the Hugging Face Spaces entry (`app_file: app.py`). Run `python app.py --help` for the flags;
every flag has an environment variable (in brackets in the help) so a Space can be configured without code.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Sequence

from reason_iad.cli_options import MODEL_OPTIONS, add_model_options, backend_from_args
from reason_iad.config import AppConfig, StudioConfig, with_model_defaults
from reason_iad.errors import UserError
from reason_iad.library_logs import quiet_library_logs


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Flags of the studio; defaults come from the environment so Spaces can set them."""
    env = os.environ.get
    parser = argparse.ArgumentParser(description="Reason-IAD Studio (Gradio).")
    parser.add_argument("--host", default=env("GRADIO_SERVER_NAME", "127.0.0.1"), help="[GRADIO_SERVER_NAME]")
    parser.add_argument("--port", type=int, default=int(env("GRADIO_SERVER_PORT", "7860")), help="[GRADIO_SERVER_PORT]")
    variables = {name: f"REASON_IAD_{name.upper()}" for name in MODEL_OPTIONS}
    defaults = {name: env(variable) for name, variable in variables.items() if variable in os.environ}
    notes = {name: f"[{variable}]" for name, variable in variables.items()}
    if "dtype" not in defaults:  # unset: the --config file's dtype (else auto)
        defaults["dtype"] = None
        notes["dtype"] += " (default: the --config file's, else auto)"
    add_model_options(parser, defaults=defaults, notes=notes)
    parser.add_argument("--db", default=env("REASON_IAD_DB", ""), help="knowledge base folder or URI [REASON_IAD_DB]")
    parser.add_argument(
        "--clip",
        default=env("REASON_IAD_CLIP", ""),
        help="image retriever of the knowledge: tiny_clip (the embedded default's) or open_clip:<arch>[:<weights "
        "tag or file>], e.g. open_clip:ViT-B-32:/models/clip.bin; empty: the model's default [REASON_IAD_CLIP]",
    )
    parser.add_argument(
        "--auth",
        default=env("REASON_IAD_AUTH", ""),
        help="user:password[,user:password...]: require login; only logged-in users may write [REASON_IAD_AUTH]",
    )
    parser.add_argument(
        "--curators",
        default=env("REASON_IAD_CURATORS", ""),
        help="comma-separated user names allowed to change knowledge (e.g. with Hugging Face OAuth) "
        "[REASON_IAD_CURATORS]",
    )
    parser.add_argument("--config", help="a JSON file written by AppConfig.to_json(); flags given override it")
    parser.add_argument("--share", action="store_true", help="ask Gradio for a public share link")
    parser.add_argument(
        "--max-queue",
        type=int,
        default=int(env("REASON_IAD_MAX_QUEUE", "32")),
        help='jobs that may wait at once; more are refused at once with "Queue is full! Please try again." '
        "[REASON_IAD_MAX_QUEUE]",
    )
    parser.add_argument("--verbose", action="store_true", help="also show the libraries' own log lines")
    return parser.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> AppConfig:
    """Map parsed flags onto the config dataclasses (the only place flags become config)."""
    loaded = AppConfig.load(args.config) if args.config else AppConfig()
    backend = backend_from_args(args, loaded.backend)  # --dtype left unset keeps the file's
    base = loaded if args.config else with_model_defaults(AppConfig(backend=backend))
    studio = StudioConfig(host=args.host, port=args.port, share=args.share)
    knowledge = dataclasses.replace(
        base.knowledge,
        db_uri=args.db or base.knowledge.db_uri,
        image_embedder=args.clip or base.knowledge.image_embedder,
    )
    return AppConfig(backend=backend, reasoning=base.reasoning, knowledge=knowledge, memory=base.memory, studio=studio)


def with_store_embedders(config: AppConfig, args: argparse.Namespace) -> AppConfig:
    """An existing knowledge base opens with the embedders it records, unless --clip or --config chooses them."""
    if args.config:
        return config
    from reason_iad.knowledge import follow_store

    return dataclasses.replace(config, knowledge=follow_store(config.knowledge, image_embedder=args.clip or None))


def parse_auth(text: str) -> list[tuple[str, str]]:
    """`user:pass,user2:pass2` -> [(user, pass), ...]; malformed pairs are refused."""
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        user, sep, password = item.partition(":")
        if not sep or not user or not password:
            raise UserError("--auth takes user:password pairs separated by commas")
        pairs.append((user, password))
    return pairs


def warm_gallery_banks(pipeline) -> None:
    """Build the gallery categories' memory banks in a background thread (the first example then answers sooner)."""
    import threading

    from demo.gallery import load_gallery
    from reason_iad.paths import EXAMPLES_DIR

    pairs = list(dict.fromkeys((item.dataset, item.category) for item in load_gallery(EXAMPLES_DIR)))
    threading.Thread(target=pipeline.warm_banks, args=(pairs,), name="warm-banks", daemon=True).start()


def main(argv: Sequence[str] | None = None) -> int:
    """Build and launch the studio; bad flags or config print one line and return 2."""
    try:
        args = parse_args(argv)
        quiet_library_logs(verbose=args.verbose)  # before anything imports lancedb
        config = with_store_embedders(config_from_args(args), args)
        auth = parse_auth(args.auth)
        print(f"Loading {config.backend.model} and the knowledge base...", file=sys.stderr, flush=True)
        from reason_iad.pipeline import Pipeline

        pipeline = Pipeline.load(config)
    except (UserError, OSError) as err:
        print(f"app.py: error: {err}", file=sys.stderr)
        return 2
    from demo.studio import build_studio, launch_options

    curators = {name.strip() for name in args.curators.split(",") if name.strip()}
    studio = build_studio(config, pipeline, curators=curators, auth_required=bool(auth))
    warm_gallery_banks(pipeline)
    studio.queue(default_concurrency_limit=4, max_size=args.max_queue).launch(**launch_options(config, auth))
    return 0


if __name__ == "__main__":
    sys.exit(main())
