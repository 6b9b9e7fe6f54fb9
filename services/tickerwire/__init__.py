"""tickerwire: live market question answering over a streaming knowledge base."""

__version__ = "0.1.0"
