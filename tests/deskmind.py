"""Test entry point for ``briefcase dev --test`` (Briefcase runs ``python -m tests.deskmind``).

Runs the desktop app's widget tests offscreen plus the packaging check by default; pass other
pytest arguments after ``--`` (``briefcase dev --no-isolation --test -- tests/core``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

if __name__ == "__main__":
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    root = Path(__file__).resolve().parents[1]
    args = sys.argv[1:] or [str(root / "tests" / "ui"), str(root / "tests" / "packaging"),
                            "-m", "not e2e", "-p", "no:cacheprovider"]
    code = pytest.main(["-q", "--rootdir", str(root), *args])
    print(f">>>>>>>>>> EXIT {int(code)} <<<<<<<<<<")  # Briefcase's test sentinel
    sys.exit(int(code))
