"""`python -m thrad_events.cli` runs the CLI, as `python -m thrad_events` does."""

from thrad_events.cli import main

main()
