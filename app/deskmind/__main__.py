"""``python -m deskmind``."""

from deskmind.cli.main import main

raise SystemExit(main())
