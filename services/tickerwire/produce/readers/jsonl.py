"""JSON Lines: one raw-document/v1 record per line."""

from __future__ import annotations

from collections.abc import Iterator

from tickerwire.core.errors import DecodeError
from tickerwire.core.schemas import decode_json
from tickerwire.produce.readers.checks import (
    BOM,
    ReadResult,
    Rejection,
    Source,
    build,
    os_rejection,
)


def read_jsonl(source: Source, *, max_body_bytes: int) -> Iterator[ReadResult]:
    """One raw-document/v1 record per line; blank lines are skipped, each line stands alone."""
    try:
        handle = source.path.open("rb")
    except OSError as exc:
        yield os_rejection(source.display, exc)
        return
    with handle:
        lineno = 0
        try:
            for lineno, raw in enumerate(handle, start=1):
                line = raw.removeprefix(BOM) if lineno == 1 else raw
                if not line.strip():
                    continue
                location = f"{source.display}:{lineno}"
                try:
                    obj = decode_json(line.rstrip(b"\r\n"))
                except DecodeError as exc:
                    # The location already names the line; keep only the column.
                    reason = exc.reason.replace("at line 1 column", "at column", 1)
                    yield Rejection(location, reason, exc.error_class)
                    continue
                if not isinstance(obj, dict):
                    yield Rejection.invalid(
                        location, f"$: expected a JSON object, got {type(obj).__name__}"
                    )
                    continue
                yield build(location, obj, max_body_bytes=max_body_bytes)
        except OSError as exc:
            yield Rejection(f"{source.display}:{lineno + 1}", str(exc), type(exc).__name__)
