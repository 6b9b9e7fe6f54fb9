"""Producer SDK and feed readers: files and records into ``tickerwire.docs.raw``."""

from tickerwire.produce.producer import RAW_TOPIC, DocumentProducer
from tickerwire.produce.readers import (
    Accepted,
    ReadResult,
    Rejection,
    Source,
    check_document,
    discover,
    read_paths,
    read_source,
)
from tickerwire.produce.run import ProduceSummary, Progress, produce_paths

__all__ = [
    "RAW_TOPIC",
    "Accepted",
    "DocumentProducer",
    "ProduceSummary",
    "Progress",
    "ReadResult",
    "Rejection",
    "Source",
    "check_document",
    "discover",
    "produce_paths",
    "read_paths",
    "read_source",
]
