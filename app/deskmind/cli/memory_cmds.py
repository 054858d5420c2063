"""index, search, sources, forget, reembed, backup, stats."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from deskmind.cli.interrupt import cancel_on_interrupt
from deskmind.cli.render import Progress, print_json
from deskmind.core.app import Core
from deskmind.core.errors import UserInputError
from deskmind.core.memory import uris


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("index", help="index files and folders into memory")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--no-transcribe", action="store_true",
                   help="leave audio and video queued instead of transcribing them now")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("search", help="hybrid search of memory")
    p.add_argument("query")
    p.add_argument("--limit", type=int, default=10)
    p.add_argument("--kind", action="append", help="only sources of this kind (repeatable)")
    p.add_argument("--source", action="append", help="only this source: id, uri or path (repeatable)")
    p.add_argument("--privacy", action="append", help="only this privacy tag (repeatable)")
    p.add_argument("--since", help="only sources dated on or after YYYY-MM-DD")
    p.add_argument("--until", help="only sources dated before YYYY-MM-DD")
    p.add_argument("--collection", metavar="NAME",
                   help="only sources in this collection, an Obsidian vault ('deskmind collections')")
    p.add_argument("--mode", choices=("hybrid", "fts", "vector"), default="hybrid")
    p.add_argument("--include-conversations", action="store_true",
                   help="also search saved conversations (earlier answers; left out by default "
                        "unless --kind conversation)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("forget", help="remove a source and everything derived from it")
    p.add_argument("refs", nargs="+", metavar="SOURCE", help="source id, uri, file or folder path")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_forget)

    p = sub.add_parser("reembed", help="rebuild the vector index with an embedding model")
    p.add_argument("--model", help="embedding model id (default: the configured one)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_reembed)

    p = sub.add_parser("backup", help="consistent copy of the memory database (SQLite: a "
                       "database file; PostgreSQL: a pg_dump custom-format file)")
    p.add_argument("dest", metavar="FILE")
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser("stats", help="what memory holds")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_stats)


def _date(value: str | None, flag: str) -> float | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError as exc:
        raise UserInputError(f"{flag} wants a date like 2026-01-31, not '{value}'") from exc


def cmd_index(args: argparse.Namespace) -> int:
    with Core() as core:
        show = not args.no_progress and not args.json and sys.stderr.isatty()
        progress = Progress(enabled=show)
        indexer = core.indexer(transcribe_media=not args.no_transcribe)
        with cancel_on_interrupt() as cancel:
            summary = indexer.index(args.paths, on_event=progress.update, cancel=cancel)
        progress.close()
        d = summary.to_dict()
        if args.json:
            print_json(d)
        else:
            print(f"indexed {d['indexed']}, unchanged {d['unchanged']}, skipped {d['skipped']}, "
                  f"failed {d['failed']}, removed {d['removed']}, queued {d.get('queued', 0)}, "
                  f"ignored {d.get('ignored', 0)}: {d['chunks']} chunks "
                  f"({d['embedded_chunks']} embedded) in {d['seconds']:.1f} s")
            for kind, counts in sorted(d["by_kind"].items()):
                print(f"  {kind:10} " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
            # Problems are diagnostics: stderr, one line each, so scripts can tell them apart.
            for part in d["partly"][:50]:
                print(f"deskmind: indexed part of {part['path']}: {part['reason']}", file=sys.stderr)
            for prob in d["problems"][:50]:
                what = "could not index" if prob["status"] == "failed" else "skipped"
                print(f"deskmind: {what} {prob['path']}: {prob['reason']}", file=sys.stderr)
            if len(d["problems"]) > 50:
                print(f"deskmind: ... and {len(d['problems']) - 50} more problems "
                      "('deskmind sources --status failed')", file=sys.stderr)
        if summary.cancelled:
            print("deskmind: cancelled; files not reached are indexed next time", file=sys.stderr)
            return 130
        return 1 if d["failed"] and not (d["indexed"] or d["unchanged"]) else 0


def cmd_search(args: argparse.Namespace) -> int:
    from deskmind.core.memory.search import SearchFilters, conversations_left_out, search_keeping

    if args.limit < 1:
        raise UserInputError("--limit must be at least 1")
    from deskmind.core.memory.models import PRIVACY_LEVELS

    for tag in args.privacy or ():
        if tag not in PRIVACY_LEVELS:
            raise UserInputError(f"--privacy '{tag}' is not a privacy tag (one of: {', '.join(PRIVACY_LEVELS)})")
    with Core() as core:
        ids: list[int] | None = None
        if args.source:
            ids = []
            for ref in args.source:
                found = core.store.resolve(ref)
                if not found:
                    raise UserInputError(f"no source matches '{ref}'")
                ids.extend(found)
        since, until = _date(args.since, "--since"), _date(args.until, "--until")
        if since is not None and until is not None and since >= until:
            raise UserInputError(f"--since {args.since} is not before --until {args.until}")
        if args.collection is not None:
            from deskmind.core.ingest.links import collections

            names = [c["name"] for c in collections(core.store)]
            if args.collection not in names:
                known = ", ".join(f"'{n}'" for n in names) if names else "none yet"
                raise UserInputError(f"no collection is named '{args.collection}' "
                                     f"(collections: {known}; 'deskmind collections' lists them)")
        filters = SearchFilters(kinds=args.kind, source_ids=ids, privacy=args.privacy,
                                since=since, until=until, collection=args.collection)
        left_out = conversations_left_out(args.kind, args.include_conversations)
        if left_out:
            hits = search_keeping(core.searcher(), args.query, args.limit, filters,
                                  lambda h: h.kind not in left_out,
                                  dataclasses.replace(filters, exclude_kinds=left_out),
                                  mode=args.mode)
        else:
            hits = core.searcher().search(args.query, limit=args.limit, filters=filters,
                                          mode=args.mode).hits
        if args.json:
            print_json([h.to_dict() for h in hits])
            return 0
        if not hits:
            print("no results")
            return 0
        for n, h in enumerate(hits, 1):
            where = format_locator(h.locator)
            shown = uris.shown(h.source)
            print(f"[{n}] {h.title or Path(shown).name}  {shown}{where}  (score {h.score:.4f}, chunk {h.chunk_id})")
            snippet = " ".join(h.text.split())
            print(f"    {snippet[:240]}{'…' if len(snippet) > 240 else ''}")
        return 0


def format_locator(loc: dict[str, Any]) -> str:
    parts = []
    if "page" in loc:
        parts.append(f"p.{loc['page']}")
    if loc.get("heading"):
        parts.append(" > ".join(loc["heading"]))
    if loc.get("symbol"):
        parts.append(loc["symbol"])
    if "start" in loc:
        parts.append(f"{_clock(loc['start'])}–{_clock(loc.get('end', loc['start']))}")
    if "line_start" in loc:
        parts.append(f"lines {loc['line_start']}-{loc.get('line_end', loc['line_start'])}")
    return ("  § " + ", ".join(parts)) if parts else ""


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def cmd_forget(args: argparse.Namespace) -> int:
    with Core() as core:
        # Resolve every reference first: one unknown reference forgets nothing at all.
        resolved = [(ref, core.store.resolve(ref)) for ref in args.refs]
        unknown = [ref for ref, ids in resolved if not ids]
        if unknown:
            raise UserInputError(
                "nothing in memory matches " + ", ".join(f"'{r}'" for r in unknown)
                + " (nothing was forgotten; 'deskmind sources' lists what memory holds)")
        from deskmind.core.speech.storage import made_files_remover  # audio Deskmind recorded

        remove = made_files_remover(core.paths.audio_dir)
        receipts = [core.store.forget_ids(ids, remove_files=remove).to_dict() for _ref, ids in resolved]
        if args.json:
            print_json(receipts if len(receipts) > 1 else receipts[0])
            return 0
        for r in receipts:
            for s in r["sources"]:
                # Derived sources (minutes, conversations) have made-up uris: their titles say more.
                what = f"{s['kind']}, derived" if s["derived"] else s["kind"]
                title = f"  \"{s['title']}\"" if s["derived"] and s["title"] else ""
                print(f"forgot source {s['id']} ({what}): {uris.shown(s['uri'])}{title}")
            print(f"removed: {len(r['sources'])} sources ({r['derived_sources']} derived), "
                  f"{r['documents']} documents, {r['chunks']} chunks, {r['fts_rows']} full-text rows, "
                  f"{r['vectors']} vectors, {r['links']} links")
            for f in r["files_removed"]:
                print(f"deleted file: {f}")
        return 0


def cmd_reembed(args: argparse.Namespace) -> int:
    from deskmind.core.memory.reembed import reembed

    with Core() as core:
        emb = core.embedder(args.model)
        show = sys.stderr.isatty() and not args.json
        last = [0.0]

        def progress(p: Any) -> None:
            if show and time.monotonic() - last[0] > 0.2:
                last[0] = time.monotonic()
                print(f"\rre-embedding with {p.model_id}: {p.done}/{p.total}", end="", file=sys.stderr)

        res = reembed(core.store, emb, on_progress=progress)
        if show:
            print(file=sys.stderr)
        d = res.__dict__ if res else {"cancelled": True}
        if args.json:
            print_json(d)
        elif res:
            was = f" (replacing {res.replaced_model})" if res.replaced_model else ""
            print(f"vector index {res.index_id} for {res.model_id} ({res.dim}-d) is active{was}: "
                  f"{res.embedded} chunks embedded in {res.seconds:.1f} s")
            if args.model and args.model != core.settings.embedder.model_id:
                print(f"set [embedder] model_id = \"{args.model}\" in {core.paths.settings_path} "
                      "to index new files with this model")
        return 0


def cmd_backup(args: argparse.Namespace) -> int:
    with Core() as core:
        store = core.store
        dest = store.backup(Path(args.dest))
        print(f"backup written: {dest} ({dest.stat().st_size / 1e6:.1f} MB)")
        if store.backend == "postgres":
            from deskmind.core.memory.pg.backup import restore_command

            print("restore it into a new, empty database with: "
                  + restore_command(dest, "postgresql://USER@HOST/NEW_DATABASE"))
        return 0


def cmd_stats(args: argparse.Namespace) -> int:
    with Core() as core:
        s = core.store.stats()
        if args.json:
            print_json(s)
            return 0
        if s.get("backend") == "postgres":
            print(f"database: {s['db_path']} (PostgreSQL {s['server_version']}, pgvector "
                  f"{s['pgvector']}; database {s['database']} at {s['server']}, "
                  f"{s['db_bytes'] / 1e6:.1f} MB)")
            largest = sorted(s["table_bytes"].items(), key=lambda kv: -kv[1])[:4]
            print(f"tables: {s['memory_bytes'] / 1e6:.1f} MB; largest " +
                  ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in largest))
        else:
            print(f"database: {s['db_path']} ({s['db_bytes'] / 1e6:.1f} MB)")
        print(f"sources: {s['sources']}  " + ", ".join(f"{k} {v}" for k, v in s["sources_by_kind"].items()))
        print("status: " + ", ".join(f"{k} {v}" for k, v in s["sources_by_status"].items()))
        print(f"chunks: {s['chunks']}")
        v = s["vector_index"]
        print(f"vectors: {v['vectors']} ({v['model_id']}, {v['dim']}-d)" if v else "vectors: none yet")
        for b in s["building_indexes"]:
            print(f"building: index {b['id']} for {b['model_id']} (run 'deskmind reembed' to finish)")
        return 0
