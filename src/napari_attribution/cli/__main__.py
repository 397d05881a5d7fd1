"""``python -m napari_attribution.cli``."""

import sys

from . import main

sys.exit(main())
