"""`python -m clipper.cli` runs the command line."""

from . import main

main()
