"""vcconv: one-shot voice conversion with interpretable auto-encoders."""

__version__ = "0.1.0"
