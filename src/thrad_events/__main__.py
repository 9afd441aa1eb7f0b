"""`python -m thrad_events` runs the CLI."""

from thrad_events.cli import main

main()
