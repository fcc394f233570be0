"""``python -m bpflink``: the command line (see ``bpflink.cli``)."""

import sys

from .cli import main

sys.exit(main())
