"""`python -m serving`: the same as `skymarket serve` (`make serve` runs it)."""

import sys

from serving.run import main

sys.exit(main())
