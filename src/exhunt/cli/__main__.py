"""`python -m exhunt.cli`: the same as the `exhunt` command."""

from exhunt.cli import main

main()
