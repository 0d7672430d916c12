"""`python -m jobs.generate …` — the same command line as `python -m jobs generate …`."""
import sys

from . import main

raise SystemExit(main(sys.argv[1:]))
