"""News stance and sentiment classification pipeline."""

__version__ = "0.1.0"
