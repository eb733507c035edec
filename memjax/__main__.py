"""``python -m memjax`` is the ``memjax`` command."""

import sys

from memjax.cli import main

sys.exit(main())
