"""How every aiokafka client of tickerwire connects: one place builds the connection options
from the settings, so that a new client cannot forget one of them."""

from __future__ import annotations

from typing import Any

from tickerwire.core.settings import Settings


def client_options(settings: Settings) -> dict[str, Any]:
    """Connection keyword arguments for an aiokafka producer, consumer or admin client."""
    return {"bootstrap_servers": settings.kafka_bootstrap}
