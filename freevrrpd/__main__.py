"""``python -m freevrrpd`` is the ``freevrrpd`` command."""

from freevrrpd.cli import main

raise SystemExit(main())
