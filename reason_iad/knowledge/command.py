"""`reason-iad kb ...`: browse, search, curate, version and move the knowledge base from the command line."""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import sys
from pathlib import Path

from reason_iad.cli_options import PhaseBars, add_model_options, share_options
from reason_iad.config import KnowledgeConfig
from reason_iad.errors import UserError
from reason_iad.knowledge.transfer import KNOWLEDGE_FORMATS


def register(subparsers) -> None:
    """Add `kb` and its actions."""
    parser = subparsers.add_parser("kb", help="curate the knowledge base (LanceDB)", description=__doc__)
    parser.add_argument("--db", default="", help="database folder or object-store URI (default: the user data dir)")
    parser.add_argument(
        "--text-embedder",
        default=None,
        help="minilm, fake[:dim], ... (default: the one the knowledge base records; minilm for a "
        "new one); a different one is refused except by `reembed`",
    )
    parser.add_argument(
        "--image-embedder",
        default=None,
        help="tiny_clip, open_clip:ViT-B-32:/path/weights.safetensors or none (default: the one the "
        "knowledge base records; for a new one tiny_clip, the embedded model's retriever)",
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)
    _add(actions, "list", "list entries", [("--dataset", {}), ("--category", {}), ("--version", {"type": int})])
    _add(actions, "show", "show one entry", [("id", {})])
    entry_fields = [
        ("--dataset", {"required": True}),
        ("--category", {"required": True}),
        ("--defect", {"required": True, "help": "defect type, or 'good' for the normal appearance"}),
        ("--title", {"required": True}),
        ("--text", {}),
        ("--text-file", {}),
        ("--author", {}),
    ]
    _add(actions, "add", "add an entry", entry_fields)
    _add(
        actions,
        "edit",
        "edit an entry",
        [("id", {}), ("--title", {}), ("--text", {}), ("--text-file", {}), ("--author", {}), ("--summary", {})],
    )
    _add(
        actions,
        "delete",
        "delete entries",
        [
            ("ids", {"nargs": "+"}),
            ("--author", {}),
            ("--summary", {}),
            ("--yes", {"action": "store_true", "help": "do not ask"}),
        ],
    )
    _add(
        actions,
        "search",
        "search titles and texts",
        [
            ("query", {}),
            ("--mode", {"choices": ["fts", "semantic", "hybrid"], "default": "hybrid"}),
            ("-k", {"type": int, "default": 10}),
            ("--dataset", {}),
            ("--category", {}),
        ],
    )
    partial = {"action": "store_true", "help": "write the valid entries even if some are refused"}
    _add(
        actions,
        "import",
        "import MMAD domain_knowledge.json or JSONL",
        [("file", {}), ("--author", {}), ("--partial", partial)],
    )
    _add(
        actions,
        "export",
        "export as JSONL or MMAD domain_knowledge.json",
        [
            ("file", {}),
            ("--format", {"choices": list(KNOWLEDGE_FORMATS), "help": "default: from the file's suffix"}),
            ("--version", {"type": int}),
        ],
    )
    _add(actions, "versions", "the change history", [])
    _add(
        actions,
        "reembed",
        "recompute all vectors, with other embedders if --text-embedder/--image-embedder say so",
        [("--author", {})],
    )
    _add(actions, "restore", "make an earlier version the latest", [("version", {"type": int}), ("--author", {})])
    _add(
        actions, "tag", "name a version (no name: list tags)", [("name", {"nargs": "?"}), ("--version", {"type": int})]
    )
    _add_impact(actions)
    _add_swap(actions)
    share_options(parser)  # `kb import FILE --db DIR` as well as `kb --db DIR import FILE`


def _add(actions, name: str, help_text: str, arguments: list) -> argparse.ArgumentParser:
    parser = actions.add_parser(name, help=help_text)
    for flag, options in arguments:
        parser.add_argument(flag, **options)
    parser.set_defaults(handler=run, action=name)
    return parser


def _add_impact(actions) -> None:
    version = {"required": True, "metavar": "VERSION", "help": "a version number or tag"}
    parser = _add(
        actions,
        "impact",
        "what an edit changes: a set's questions answered under two knowledge versions, accuracy and flips",
        [
            ("--data", {"required": True, "metavar": "ROOT", "help": "an MMAD-format set (folder with mmad.json)"}),
            ("--from", {"dest": "from_version", **version}),
            ("--to", {"dest": "to_version", **version}),
            ("--category", {"help": "the category asked (name or dataset/name; default: every one in the set)"}),
            ("--mode", {"choices": ["knowledge", "full"], "default": "knowledge", "help": "full adds latent steps"}),
            ("--out", {"metavar": "DIR", "help": "also write impact.json and impact.html (plotly) into DIR"}),
            ("--json", {"action": "store_true", "help": "print the report as JSON"}),
            ("--skip-missing", {"action": "store_true", "help": "skip images missing from the set"}),
        ],
    )
    add_model_options(parser)


def _add_swap(actions) -> None:
    parser = _add(
        actions,
        "swap",
        "the swap test: exchange two defect entries' titles (in a scratch copy) and count the answers that follow",
        [
            ("--data", {"required": True, "metavar": "ROOT", "help": "an MMAD-format set (folder with mmad.json)"}),
            ("--category", {"required": True, "help": "the category (name or dataset/name)"}),
            ("--defects", {"required": True, "metavar": "A,B", "help": "the two defect types, e.g. hole,scratch"}),
            ("--skip-missing", {"action": "store_true", "help": "skip images missing from the set"}),
        ],
    )
    add_model_options(parser)


def _author(args) -> str:
    return (getattr(args, "author", None) or getpass.getuser() or "unknown").strip()


def _text(args) -> str | None:
    if getattr(args, "text_file", None):
        try:
            return Path(args.text_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise UserError(f"cannot read {args.text_file}: {err}") from err
    return args.text


def run(args: argparse.Namespace) -> int:
    """Handler of every `kb` action."""
    from reason_iad.knowledge import open_store

    if args.action == "reembed":
        return _reembed(args)
    if args.action in ("impact", "swap"):
        return _impact(args)
    return HANDLERS[args.action](open_store(store_config(args)), args)


def store_config(args: argparse.Namespace) -> KnowledgeConfig:
    """The knowledge base of `--db` with the embedders it records, unless a flag names others.

    A new knowledge base gets the embedded default pipeline's embedders, so the studio can open what `kb` created.
    """
    from reason_iad.config import AppConfig, with_model_defaults
    from reason_iad.knowledge import follow_store

    new = dataclasses.replace(with_model_defaults(AppConfig()).knowledge, db_uri=args.db)
    return follow_store(new, args.text_embedder, args.image_embedder)


def _print_entries(stored) -> None:
    for s in stored:
        e = s.entry
        print(f"{e.id:<45} {e.title[:40]:<40} {len(e.text):>5} chars  updated {s.updated_at[:19]}")
    print(f"({len(stored)} entries)")


def _list(store, args) -> int:
    _print_entries(store.list(args.dataset, args.category, args.version))
    return 0


def _show(store, args) -> int:
    stored = store.get(args.id)
    e = stored.entry
    print(
        f"id        {e.id}\ndataset   {e.dataset}\ncategory  {e.category}\ndefect    {e.defect}\n"
        f"title     {e.title}\nsource    {e.source}\nauthor    {e.author}\ncreated   {stored.created_at}\n"
        f"updated   {stored.updated_at}\n\n{e.text}"
    )
    return 0


def _add_entry(store, args) -> int:
    from reason_iad.knowledge.entry import entry_id, make_entry

    text = _text(args)
    if text is None:
        raise UserError("give the entry text with --text or --text-file")
    entry = make_entry(
        id=entry_id(args.dataset, args.category, args.defect),
        dataset=args.dataset,
        category=args.category,
        defect=args.defect,
        title=args.title,
        text=text,
        source="curated",
        author=_author(args),
    )
    print(f"added {entry.id}: version {store.add([entry], _author(args))}")
    return 0


def _edit(store, args) -> int:
    changes = {k: v for k, v in (("title", args.title), ("text", _text(args))) if v is not None}
    if not changes:
        raise UserError("nothing to change: give --title, --text or --text-file")
    print(f"edited {args.id}: version {store.update(args.id, _author(args), args.summary or '', **changes)}")
    return 0


def _delete(store, args) -> int:
    if not args.yes:
        if not sys.stdin.isatty():
            raise UserError("deleting needs confirmation: pass --yes")
        if input(f"delete {', '.join(args.ids)}? [y/N] ").strip().lower() != "y":
            print("nothing deleted")
            return 1
    print(f"deleted {len(args.ids)}: version {store.delete(args.ids, _author(args), args.summary or '')}")
    return 0


def _search(store, args) -> int:
    from reason_iad.knowledge.search import search

    for hit in search(store, args.query, args.mode, args.k, args.dataset, args.category):
        print(f"{hit.score:8.4f}  {hit.entry.id:<45} {hit.entry.title}")
    return 0


def _import(store, args) -> int:
    from tqdm import tqdm

    from reason_iad.knowledge.transfer import import_entries, read_import_file

    entries, refused = read_import_file(args.file, _author(args))
    with tqdm(total=len(entries), desc="importing", unit="entry", file=sys.stderr, disable=None) as bar:
        summary = import_entries(store, entries, refused, _author(args), args.partial, progress=bar.update)
    print(summary.describe())
    return 0 if summary.version or not summary.refused else 2


def _export(store, args) -> int:
    from reason_iad.knowledge.transfer import export_knowledge, format_of

    kind = args.format or format_of(args.file).name
    count = export_knowledge(store, args.file, kind, args.version)
    print(f"exported {count} entries to {args.file} ({kind})")
    return 0


def _versions(store, args) -> int:
    for change in store.changes():
        print(f"v{change.version:<5} {change.timestamp[:19]}  {change.author:<16} {change.action:<8} {change.summary}")
    return 0


def _restore(store, args) -> int:
    print(f"restored version {args.version}: now version {store.restore(args.version, _author(args))}")
    return 0


def _tag(store, args) -> int:
    if args.name is None:
        for name, version in sorted(store.tags().items()):
            print(f"{name:<30} v{version}")
        return 0
    print(f"tagged version {store.tag(args.name, args.version)} as {args.name}")
    return 0


def _reembed(args) -> int:
    from tqdm import tqdm

    from reason_iad.knowledge import default_db_uri
    from reason_iad.knowledge.embedders import make_embedder
    from reason_iad.knowledge.reembed import reembed
    from reason_iad.knowledge.schema import KNOWLEDGE_TABLE

    uri = args.db or default_db_uri()
    import lancedb

    from reason_iad.lance_tables import has_table

    if not has_table(lancedb.connect(uri), KNOWLEDGE_TABLE):
        raise UserError(f"no knowledge base at {uri}")
    config = store_config(args)
    image = make_embedder(config.image_embedder) if config.image_embedder else None
    with tqdm(desc="re-embedding", unit="entry", file=sys.stderr, disable=None) as bar:
        store = reembed(uri, make_embedder(config.text_embedder), image, _author(args), progress=bar.update)
    print(f"re-embedded {store.count()} entries: version {store.version}")
    return 0


def _impact(args) -> int:
    """Answer the set under both versions (the model runs only for prompts not in the answer cache) and report.

    `kb swap` shares the checks and loading, then runs the swap test instead.
    """
    import json

    from reason_iad.cli_options import backend_from_args
    from reason_iad.eval import impact
    from reason_iad.eval.impact_report import impact_table, write_impact
    from reason_iad.knowledge import default_db_uri, open_store

    uri = args.db or default_db_uri()
    impact.require_knowledge_base(uri)  # everything is checked before the model loads and anything is written
    out = getattr(args, "out", None)
    if out and Path(out).expanduser().exists() and not Path(out).expanduser().is_dir():
        raise UserError(f"--out {args.out} is a file, not a folder")
    config = impact.impact_config(uri, backend_from_args(args), args.text_embedder, args.image_embedder)
    eval_set = impact.read_impact_set(args.data, args.category, args.skip_missing)
    store = open_store(config.knowledge, seed_dir=None)
    if args.action == "swap":
        return _swap(args, config, eval_set)
    versions = [impact.resolve_version(store, v) for v in (args.from_version, args.to_version)]
    impact.store_items(eval_set.items, store, versions)
    pipeline = impact.load_impact_pipeline(config)
    with PhaseBars() as bars:
        report = impact.check_impact(pipeline, eval_set, *versions, args.mode, progress=bars.update)
    print(json.dumps(report.to_dict(), ensure_ascii=False) if args.json else impact_table(report))
    if args.out:
        paths = write_impact(report, args.out)
        print(f"wrote {', '.join(str(p) for p in paths)}", file=sys.stderr if args.json else sys.stdout)
    return 0


def _swap(args, config, eval_set) -> int:
    """The swap test on the set's questions about the two defect types; prints its one-line report."""
    from reason_iad.eval import impact
    from reason_iad.eval.swap import swap_check

    defects = [d.strip() for d in args.defects.split(",")]
    dataset, category = {(i.dataset, i.category) for i in eval_set.items}.pop()
    pipeline = impact.load_impact_pipeline(config)
    with PhaseBars() as bars:
        result = swap_check(pipeline, eval_set, dataset, category, defects, progress=bars.update)
    print(result.line())
    return 0


HANDLERS = {
    "list": _list,
    "show": _show,
    "add": _add_entry,
    "edit": _edit,
    "delete": _delete,
    "search": _search,
    "import": _import,
    "export": _export,
    "versions": _versions,
    "restore": _restore,
    "tag": _tag,
}
