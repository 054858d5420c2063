"""sources, watch, links, collections: what ingestion knows and keeps up to date."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from datetime import datetime
from typing import Any

from deskmind.cli.render import Progress, print_json
from deskmind.core.app import Core
from deskmind.core.errors import UserInputError
from deskmind.core.memory import uris

STATUSES = ("indexed", "skipped", "failed", "queued", "pending")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sources", help="list sources in memory with their status")
    p.add_argument("--status", choices=STATUSES, help="only sources with this status")
    p.add_argument("--kind", help="only sources of this kind (markdown, pdf, code, audio, ...)")
    p.add_argument("--limit", type=int, default=None, help="at most N sources (newest first)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sources)

    p = sub.add_parser("watch", help="keep folders indexed as their files change")
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="folders to watch (default: [ingest] watch in settings)")
    p.add_argument("--debounce", type=float, default=None, metavar="SECONDS",
                   help="quiet time before changes are indexed (default: settings, 2 s)")
    p.add_argument("--no-initial-scan", action="store_true", help="do not index the folders first")
    p.add_argument("--for", dest="duration", type=float, default=None, metavar="SECONDS",
                   help="stop after this long (default: until Ctrl+C)")
    p.set_defaults(func=cmd_watch)

    p = sub.add_parser("links", help="links from and to a source (Markdown links, wikilinks)")
    p.add_argument("ref", metavar="SOURCE", help="source id, uri or file path")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_links)

    p = sub.add_parser("collections", help="folders indexed as one collection (Obsidian vaults)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_collections)


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M") if ts else "-"


def cmd_sources(args: argparse.Namespace) -> int:
    from deskmind.core.ingest.transcribe import NO_TRANSCRIBER, get_transcriber
    from deskmind.core.memory.machine import machine_label

    if args.limit is not None and args.limit < 1:
        raise UserInputError("--limit must be at least 1")
    with Core() as core:
        sources = core.store.list_sources(kind=args.kind, status=args.status, limit=args.limit)
        queued = [s for s in sources if s.status == "queued"]
        here = core.store.scope.id if any(s.machine for s in sources) else ""
        names = core.store.machines() if here else {}
        # Which machine holds a file matters once more than one indexes into this memory.
        several = len(names) > 1
        if args.json:
            out = []
            for s in sources:
                d = s.to_dict()
                d["machine_name"] = names.get(s.machine) if s.machine else None
                d["this_machine"] = s.machine == here if s.machine else None
                if s.status == "queued" and get_transcriber() is None:
                    d["error"] = d["error"] or NO_TRANSCRIBER
                out.append(d)
            print_json(out)
            return 0
        if not sources:
            print("no sources" + (" match" if args.status or args.kind else " yet: try 'deskmind index PATH'"))
            return 0
        for s in sources:
            shown = uris.shown(s.uri).replace("\n", "\\n")
            line = f"{s.id:>6}  {s.status:8} {s.kind:9} {s.privacy:8} {s.chunk_count:>5} ch  {_when(s.indexed_at or s.updated_at)}  {shown}"
            if s.machine and several:  # a file: it is on the machine that indexed it
                line += f"  [on {machine_label(s.machine, names, here)}]"
            print(line)
            if s.error:
                print(f"{'':8}{s.error}")
            if s.status == "indexed":
                for note in s.metadata.get("left_out") or ():  # a budget cut it short
                    print(f"{'':8}indexed in part: {note}")
        counts: dict[str, int] = {}
        for s in sources:
            counts[s.status] = counts.get(s.status, 0) + 1
        print(f"{len(sources)} sources: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        if queued:
            if get_transcriber() is None:
                print(f"{len(queued)} audio/video file(s) wait for transcription: no speech engine is "
                      "registered yet; they will be transcribed once one is")
            else:
                print(f"{len(queued)} audio/video file(s) queued for transcription")
        return 0


def cmd_watch(args: argparse.Namespace) -> int:
    from deskmind.core.ingest.watch import FolderWatcher

    with Core() as core:
        roots = args.paths or core.settings.ingest.watch
        if not roots:
            raise UserInputError("nothing to watch: give folders, or set [ingest] watch = [\"~/Notes\"] "
                                 f"in {core.paths.settings_path}")
        debounce = args.debounce if args.debounce is not None else core.settings.ingest.watch_debounce_s
        show = sys.stderr.isatty()

        def report(summary: Any) -> None:
            d = summary.to_dict()
            if not any(d[k] for k in ("indexed", "skipped", "failed", "queued", "removed")):
                return
            stamp = time.strftime("%H:%M:%S")
            print(f"[{stamp}] indexed {d['indexed']}, removed {d['removed']}, skipped {d['skipped']}, "
                  f"failed {d['failed']}, queued {d['queued']}: {d['chunks']} chunks", flush=True)
            for prob in d["problems"][:20]:
                print(f"  {prob['status']}: {prob['path']}: {prob['reason']}", flush=True)

        indexer = core.indexer()
        progress = Progress(enabled=show)

        class _ProgressIndexer:
            """The indexer with the CLI's progress bar on its runs."""

            store = indexer.store
            ignore = indexer.ignore

            @staticmethod
            def index(paths: Any, **kw: Any) -> Any:
                try:
                    return indexer.index(paths, on_event=progress.update, **kw)
                finally:
                    progress.close()

        watcher = FolderWatcher(_ProgressIndexer(), roots, debounce_s=debounce, on_summary=report)
        print(f"watching {', '.join(str(r) for r in watcher.roots)} (Ctrl+C to stop)", flush=True)
        watcher.start(initial_scan=not args.no_initial_scan)
        stop = threading.Event()
        try:
            stop.wait(args.duration)
        except KeyboardInterrupt:  # Ctrl+C is how watching normally ends
            print("stopped watching", flush=True)
        finally:
            watcher.stop()
        return 0


def cmd_links(args: argparse.Namespace) -> int:
    from deskmind.core.ingest.links import backlinks, outgoing

    with Core() as core:
        ids = core.store.resolve(args.ref)
        if len(ids) != 1:
            raise UserInputError(f"'{args.ref}' matches {len(ids)} sources: name one file or id")
        src = core.store.get_source(ids[0])
        out, back = outgoing(core.store, src.id), backlinks(core.store, src.id)

        def uri(i: int | None) -> str | None:
            s = core.store.get_source(i) if i else None
            return s.uri if s else None

        if args.json:
            print_json({"source": src.uri,
                        "outgoing": [dict(e.__dict__, target_uri=uri(e.target_id)) for e in out],
                        "backlinks": [dict(e.__dict__, source_uri=uri(e.source_id)) for e in back]})
            return 0
        print(uris.shown(src.uri))
        print(f"links to ({len(out)}):")
        for e in out:
            print(f"  {e.kind:8} {e.target}" + (f"  -> {uris.shown(uri(e.target_id) or '')}" if e.target_id else "  (not in memory)"))
        print(f"linked from ({len(back)}):")
        for e in back:
            print(f"  {e.kind:8} {uris.shown(uri(e.source_id) or '')}")
        return 0


def cmd_collections(args: argparse.Namespace) -> int:
    from deskmind.core.ingest.links import collections

    with Core() as core:
        cols = collections(core.store)
        if args.json:
            print_json(cols)
        elif not cols:
            print("no collections (an Obsidian vault, a folder with .obsidian/, becomes one when indexed)")
        for c in cols:
            print(f"{c['name']}  ({c['kind']}, {c['sources']} sources)  {c['root']}")
        return 0


def DOCTOR_CHECKS(core: Core) -> list:  # noqa: N802  (name fixed by the doctor command)
    def parsers() -> str:
        import pypdf

        from deskmind.core.ingest.extractors.code import _parser

        if _parser("javascript") is None:
            from deskmind.core.errors import DeskmindError

            raise DeskmindError("tree-sitter grammars are missing: code in languages other than "
                                "Python is cut by blank lines (pip install tree-sitter-language-pack==0.13.0)")
        return f"pypdf {pypdf.__version__}, tree-sitter grammars"

    return [("ingestion parsers", parsers)]
