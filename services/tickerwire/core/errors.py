"""One root error, with the retry facts on the class.

The stream loop decides retry, pause or dead-letter from these attributes, never from message text.
"""

from __future__ import annotations


class TickerwireError(Exception):
    """Root of every error tickerwire raises on purpose."""

    #: Trying again later may succeed (a timeout, a 429, a 5xx, a broker hiccup).
    retriable: bool = False
    #: The record that caused it can never succeed as it is; send it to the DLQ.
    dead_letter: bool = False

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        #: Seconds the server asked us to wait, when it said (Retry-After).
        self.retry_after = retry_after

    @property
    def error_class(self) -> str:
        """A stable, machine-readable name for metrics and DLQ records."""
        return type(self).__name__


class ConfigError(TickerwireError):
    """The settings or the local installation are wrong; fix and restart."""


class TransientError(TickerwireError):
    """A fault outside the record; retry with backoff, never dead-letter on the first try."""

    retriable = True


class PermanentError(TickerwireError):
    """The record itself is bad; dead-letter it with the reason and go on."""

    dead_letter = True


class ValidationError(PermanentError):
    """A record does not match its JSON Schema, or is not JSON at all."""


class DecodeError(PermanentError):
    """A record's bytes are not valid UTF-8 JSON."""


class TooLargeError(PermanentError):
    """A document body is over the configured size limit."""


class EmbeddingError(TickerwireError):
    """An embedding call failed."""


class EmbeddingTransientError(EmbeddingError, TransientError):
    """The embedding service was busy, slow or down (429, 5xx, timeout)."""


class EmbeddingPermanentError(EmbeddingError, PermanentError):
    """The embedding service rejected one input for good (e.g. a 400)."""


class EmbeddingRejectedError(EmbeddingError, ConfigError):
    """The embedding service rejected the deployment (401/403: the API key; 404: the model).

    Fatal: no retry or dead letter fixes it, so the worker stops with the batch unacknowledged.
    """


class ModelFilesError(ConfigError):
    """Model files are missing or do not match their pinned hashes."""


class VectorIndexError(TickerwireError):
    """The vector index failed."""


class IndexUnavailableError(VectorIndexError, TransientError):
    """The vector index did not answer; retry."""


class BrokerError(TickerwireError):
    """The local Kafka broker could not be started, stopped or reached."""


class BrokerUnavailableError(BrokerError, TransientError):
    """Kafka did not answer (a timeout, a lost connection, a leader moving); retry."""


class BrokerRejectedError(BrokerError, ConfigError):
    """Kafka refused the request for good (e.g. not authorised): fix the settings."""


class AnswerModelError(TickerwireError):
    """The answer model (the chat API) failed for good, or after its retries ran out."""
