"""Each tool's scope checks, straight against the ToolBox (real store, real audit table)."""

from __future__ import annotations

import asyncio
import os

from deskmind.core.agents.audit import AuditLog
from deskmind.core.agents.permissions import Scopes, agent_config
from deskmind.core.agents.tools import ToolBox
from deskmind.core.routing.config import AgentConfig
from deskmind.core.runtimes.base import ToolCall
from tests.core.ask.conftest import add_note


def box(core, cfg: AgentConfig, zone_ceiling="secret", approver=None) -> ToolBox:
    return ToolBox(Scopes(cfg), AuditLog(core.store), zone_ceiling=zone_ceiling,
                   searcher=core.searcher(), store=core.store, remember=core.remember,
                   approver=approver)


def call(tb: ToolBox, name: str, **args):
    return asyncio.run(tb.call(ToolCall("c1", name, args)))


def test_read_file_only_under_granted_folders(core, tmp_path):
    ok_dir = tmp_path / "shared"
    ok_dir.mkdir()
    (ok_dir / "a.txt").write_text("shared text")
    (tmp_path / "private.txt").write_text("not for you")
    os.symlink(tmp_path / "private.txt", ok_dir / "sneaky.txt")
    tb = box(core, AgentConfig("reader", read_paths=[str(ok_dir)], tools=["read_file"]))
    assert call(tb, "read_file", path=str(ok_dir / "a.txt")).content == "shared text"
    for bad in (str(tmp_path / "private.txt"), str(ok_dir / ".." / "private.txt"), str(ok_dir / "sneaky.txt")):
        r = call(tb, "read_file", path=bad)
        assert r.decision == "denied" and "not for you" not in r.content
    # a file's sensitivity is unknown (private): never handed to a cloud-zone model
    assert call(box(core, tb.scopes.cfg, zone_ceiling="public"), "read_file",
                path=str(ok_dir / "a.txt")).decision == "denied"
    assert [e.decision for e in AuditLog(core.store).entries()] == ["allowed", "denied", "denied", "denied", "denied"]


def test_write_file_only_under_write_paths_and_with_approval(core, tmp_path):
    out = tmp_path / "drafts"
    out.mkdir()
    readable = tmp_path / "readable"
    readable.mkdir()
    (tmp_path / "outside.txt").write_text("keep me")
    os.symlink(tmp_path / "outside.txt", out / "sneaky.txt")
    cfg = AgentConfig("drafter", read_paths=[str(readable)], write_paths=[str(out)],
                      tools=["write_file", "read_file"])
    asked = []

    def yes(req):
        asked.append((req.action, req.details["path"]))
        return True

    tb = box(core, cfg, approver=yes)
    assert "write_file" in [t.name for t in tb.offered()]
    r = call(tb, "write_file", path=str(out / "letter.txt"), text="Dear Sam,")
    assert r.decision == "approved" and (out / "letter.txt").read_text() == "Dear Sam,"
    assert asked == [("write", str(out / "letter.txt"))]
    # Outside write_paths (a folder it may only read, .., a symlink out): refused, untouched.
    for bad in (readable / "x.txt", out / ".." / "outside.txt", out / "sneaky.txt"):
        r = call(tb, "write_file", path=str(bad), text="overwritten")
        assert r.decision == "denied" and "may not write" in r.content
    assert (tmp_path / "outside.txt").read_text() == "keep me" and not (readable / "x.txt").exists()
    assert len(asked) == 1  # nobody was asked about a write that was never allowed
    # Granted folder, but nobody approves: nothing written.
    r = call(box(core, cfg), "write_file", path=str(out / "later.txt"), text="x")
    assert r.decision == "refused" and not (out / "later.txt").exists()
    # No write_paths at all (the default): always refused.
    none = AgentConfig("reader", tools=["write_file"])
    assert call(box(core, none, approver=yes), "write_file", path=str(out / "y.txt"), text="x").decision == "denied"
    decisions = [(e.tool, e.decision) for e in AuditLog(core.store).entries()]
    assert decisions == [("write_file", "approved")] + [("write_file", "denied")] * 3 + \
        [("write_file", "refused"), ("write_file", "denied")]


def test_write_file_rechecks_a_folder_swapped_for_a_symlink_while_asked(core, tmp_path):
    out, outside = tmp_path / "drafts", tmp_path / "outside"
    (out / "sub").mkdir(parents=True)
    outside.mkdir()
    cfg = AgentConfig("drafter", write_paths=[str(out)], tools=["write_file"])

    def swap_then_yes(req):  # while the person is asked, drafts/sub becomes a link out
        (out / "sub").rmdir()
        os.symlink(outside, out / "sub")
        return True

    r = call(box(core, cfg, approver=swap_then_yes), "write_file", path=str(out / "sub" / "x.txt"), text="x")
    assert r.decision == "denied" and "now leads outside" in r.content
    assert list(outside.iterdir()) == []


def test_save_note_needs_scope_and_approval(core):
    cfg = AgentConfig("writer", write_memory=True, tools=["save_note"])
    assert call(box(core, cfg), "save_note", title="t", text="x").decision == "refused"
    r = call(box(core, cfg, approver=lambda req: req.action == "write"), "save_note",
             title="Groceries", text="milk, eggs")
    assert r.decision == "approved"
    notes = [s for s in core.store.list_sources() if s.kind == "note"]
    assert [n.title for n in notes] == ["Groceries"] and notes[0].privacy == "private"
    no_write = AgentConfig("summarizer", write_memory=False, tools=["save_note"])
    assert call(box(core, no_write, approver=lambda r: True), "save_note", title="t", text="x").decision == "denied"


def test_tools_not_granted_and_unknown_tools_are_refused(core):
    tb = box(core, agent_config(None, "note-cleaner"))
    r = call(tb, "search_memory", query="anything")
    assert r.decision == "denied" and r.content.startswith("REFUSED")
    assert call(tb, "format_disk").decision == "denied"
    assert call(box(core, agent_config(None, "nobody-defined")), "list_sources").decision == "denied"


def test_list_sources_respects_ceiling(core):
    add_note(core, "public thing", "public", "Public note")
    add_note(core, "secret thing", "secret", "Secret note")
    tb = box(core, agent_config(None, "quick-ask"))  # ceiling private
    out = call(tb, "list_sources").content
    assert "Public note" in out and "Secret note" not in out
