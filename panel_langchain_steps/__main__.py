"""``python -m panel_langchain_steps view FILE``: see `panel_langchain_steps.cli`."""

import sys

from .cli import main

sys.exit(main())
