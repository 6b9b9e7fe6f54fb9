"""Tests that load the real offline ONNX model (slower than unit tests; no network)."""
