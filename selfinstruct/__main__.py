"""``python -m selfinstruct`` runs the CLI."""

from selfinstruct.cli.commands import main

main()
