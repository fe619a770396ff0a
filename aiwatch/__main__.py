"""`python -m aiwatch` is the `aiwatch` command."""
import sys

from aiwatch.cli import main

sys.exit(main())
