"""`reason-iad` console entry: one subcommand per capability, each registered by the module that owns it.

A subcommand module exposes `register(subparsers)`, which adds its parser and sets `handler=fn(args) -> int`.
`UserError` becomes a one-line message and exit code 2; nothing else is caught, so bugs stay visible.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from reason_iad import __version__
from reason_iad.cli_options import add_everywhere
from reason_iad.errors import UserError
from reason_iad.library_logs import quiet_library_logs

EXIT_USAGE = 2


def _subcommand_modules() -> list:
    from reason_iad.bench import command as bench_command
    from reason_iad.eval import command as eval_command
    from reason_iad.knowledge import command as kb_command
    from reason_iad.reasoning import command as infer_command
    from reason_iad.synth import command as synth_command
    from reason_iad.training import command as train_command

    return [synth_command, kb_command, infer_command, eval_command, bench_command, train_command]


def build_parser() -> argparse.ArgumentParser:
    """The full `reason-iad` parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="reason-iad",
        description="Reason-IAD Studio: knowledge-guided latent reasoning for industrial anomaly detection.",
    )
    parser.add_argument("--version", action="version", version=f"reason-iad {__version__}")
    subparsers = parser.add_subparsers(title="subcommands", metavar="COMMAND")
    for module in _subcommand_modules():
        module.register(subparsers)
    add_everywhere(
        parser,
        "--verbose",
        action="store_true",
        help="also show the libraries' own log lines (e.g. LanceDB's warnings)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv`, run the chosen subcommand and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_USAGE
    quiet_library_logs(verbose=args.verbose)  # before any handler imports lancedb
    try:
        return int(handler(args) or 0)
    except UserError as err:
        print(f"reason-iad: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("reason-iad: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
