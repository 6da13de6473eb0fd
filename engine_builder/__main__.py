"""``python -m engine_builder`` is the same as the ``engine-builder`` console script."""

from engine_builder.cli import main

raise SystemExit(main())
