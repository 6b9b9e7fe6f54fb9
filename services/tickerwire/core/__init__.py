"""Settings, logging, metrics, errors and records shared by every part of tickerwire."""
