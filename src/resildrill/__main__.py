"""``python -m resildrill`` runs the command-line interface."""

from resildrill.cli import main

main()
