"""The one base class of the errors a user can fix: every CLI command prints one line and exits 2."""

from __future__ import annotations


class PipelineError(Exception):
    """A problem with the user's input, configuration or environment; the message says what to do."""
