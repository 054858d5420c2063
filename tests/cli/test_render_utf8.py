"""JSON output stays valid UTF-8 when a file name on disk is not."""

from __future__ import annotations

import json
import os
import subprocess
import sys

SCRIPT = (
    "import os\n"
    "from deskmind.cli.render import print_json\n"
    "print_json({'path': os.fsdecode(b'/notes/caf\\xe9-\\xff.md'), 'ok': 'caf\\u00e9'})\n"
)


def test_non_utf8_file_name_prints_as_valid_utf8_json() -> None:
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr.decode("utf-8", "replace")
    data = json.loads(out.stdout.decode("utf-8"))  # strict: raises on invalid UTF-8
    assert data["path"] == "/notes/caf\ufffd-\ufffd.md"
    assert data["ok"] == "caf\u00e9"
