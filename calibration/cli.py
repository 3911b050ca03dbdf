"""Commands that calibration adds to `ttsplan` (loaded through the ttsplan.commands entry point)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add calibration's commands to the ttsplan app."""
