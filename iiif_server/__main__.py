"""`python -m iiif_server` is the `iiif-server` command."""

import sys

from .cli import main

sys.exit(main())
