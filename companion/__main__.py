"""``python -m companion finetune --config FILE``: see ``companion.cli``."""

from companion.cli import main

raise SystemExit(main())
