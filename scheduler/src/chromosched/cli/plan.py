"""`chromosched` subcommands for the plan area (filled by its issue)."""

from __future__ import annotations


def register(commands, simulate) -> None:
    """Add this area's subcommands to the parser collections."""
