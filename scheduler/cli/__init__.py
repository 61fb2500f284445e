"""The command line: parsing, wiring gateways to ports, the one exit path, read-only reports."""

from scheduler.cli.main import main

__all__ = ["main"]
