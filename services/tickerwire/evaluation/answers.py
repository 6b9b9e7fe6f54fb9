"""Answer evaluation (`tickerwire eval --answers`): /v1/ask-style questions on the eval index.

Reported per dataset:

- ``answer_recall``: share of questions with a gold ``answer`` whose answer text contains it
  (numbers normalized: "$1,577" == "1577.00" == "1577"; other answers by normalized substring);
- ``citation_precision``: share of the answers' citations that name a retrieved chunk (must be
  1.0: the ask use case drops the others);
- ``refusal_rate_evidence_present``: refusals with the whole corpus indexed;
- ``refusal_rate_evidence_absent``: refusals for the same questions after their relevant passages
  (and, for datasets whose rows carry ``doc_name``, the rest of the same context, which restates
  the same numbers) are deleted from the index.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from tickerwire.core.ports import VectorIndex
from tickerwire.evaluation.dataset import Question
from tickerwire.query.ask import AskService, final_response

_NUMBER = re.compile(r"[-−]?\(?\$?\s?\d[\d,]*(?:\.\d+)?")
_SPACES = re.compile(r"\s+")
#: Answer questions asked at most (a seeded sample), so the run stays minutes, not hours.
DEFAULT_ANSWER_QUESTIONS = 200


def normalize_number(text: str) -> str | None:
    """A number as a canonical string ("$1,577" and "1577.00" are both "1577"); None if none."""
    raw = text.replace("−", "-").replace("$", "").replace(",", "").replace(" ", "")
    negative = raw.startswith("-") or raw.startswith("(")
    raw = raw.strip("-()")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        return None
    value = -value if negative else value
    normalized = format(value.normalize(), "f")
    return "0" if normalized in ("-0", "0") else normalized


def numbers_in(text: str) -> set[str]:
    """Every number in ``text``, normalized, with and without its sign."""
    out: set[str] = set()
    for match in _NUMBER.finditer(text):
        n = normalize_number(match.group(0))
        if n is not None:
            out.add(n)
            out.add(n.lstrip("-"))
    return out


def _plain(text: str) -> str:
    return _SPACES.sub(" ", text).strip().casefold()


def gold_parts(gold: Any) -> list[str]:
    """The parts of a gold answer that must all appear (a list is a multi-span answer)."""
    if isinstance(gold, list):
        return [str(g) for g in gold if str(g).strip()]
    return [str(gold)] if gold is not None and str(gold).strip() else []


def answer_contains(answer: str, gold: Any) -> bool:
    """True when every part of ``gold`` appears in ``answer`` (numbers compared normalized).

    A part that is a number (after removing "$", ",", "%" and spaces) must appear as a number;
    any other part must appear as text, case and spacing ignored.
    """
    parts = gold_parts(gold)
    if not parts:
        return False
    have = numbers_in(answer)
    text = _plain(answer)
    for part in parts:
        number = normalize_number(part.strip().rstrip("%").strip())
        if number is not None:
            if number not in have and number.lstrip("-") not in have:
                return False
        elif _plain(part) not in text:
            return False
    return True


def load_answers(dataset_dir: Path) -> dict[str, Any]:
    """Gold answers by question id, for questions that carry an ``answer`` field."""
    out: dict[str, Any] = {}
    path = dataset_dir / "questions.jsonl"
    for line in path.read_text("utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            if row.get("answer") not in (None, "", []):
                out[str(row["id"])] = row["answer"]
    return out


def evidence_documents(questions: Iterable[Question], corpus: Sequence[dict[str, Any]]) -> set[str]:
    """Document ids to delete for the evidence-absent run: relevant ids plus their contexts."""
    relevant = {doc_id for q in questions for doc_id in q.relevant}
    contexts = {
        str(row["doc_name"]) for row in corpus if row["id"] in relevant and row.get("doc_name")
    }
    return relevant | {
        str(row["id"]) for row in corpus if row.get("doc_name") and row["doc_name"] in contexts
    }


@dataclass
class AnswerRun:
    """What the answers to one set of questions came to."""

    asked: int = 0
    refused: int = 0
    with_gold: int = 0
    recalled: int = 0
    citations: int = 0
    citations_valid: int = 0
    citations_dropped: int = 0

    def add(self, response: dict[str, Any], gold: Any, retrieved: set[str]) -> None:
        """Count one /v1/ask response; ``retrieved`` are the chunk ids it was given to cite."""
        self.asked += 1
        self.refused += not response["grounded"]
        self.citations_dropped += int(response.get("citations_dropped", 0))
        for c in response["citations"]:
            self.citations += 1
            self.citations_valid += c["chunk_id"] in retrieved
        if gold_parts(gold):
            self.with_gold += 1
            self.recalled += answer_contains(response["answer"], gold)


def sample_questions(questions: Sequence[Question], limit: int, seed: int = 7) -> list[Question]:
    """At most ``limit`` questions, a seeded sample (all of them when there are fewer)."""
    if len(questions) <= limit:
        return list(questions)
    return random.Random(seed).sample(list(questions), limit)


async def answer_all(
    ask: AskService,
    questions: Sequence[Question],
    gold: dict[str, Any],
    *,
    k: int = 5,
    advance: Callable[[], None] = lambda: None,
) -> AnswerRun:
    """Ask every question as /v1/ask would (offline or LLM model, as configured)."""
    run = AnswerRun()
    for q in questions:
        response = await final_response(ask.ask(q.text, k=k))
        run.add(response, gold.get(q.id), set(response["retrieved"]))
        advance()
    return run


async def delete_documents(index: VectorIndex, doc_ids: Iterable[str]) -> int:
    """Delete every point of ``doc_ids``; returns how many points went."""
    return await index.apply_commits([(doc_id, ()) for doc_id in sorted(set(doc_ids))])


def _share(part: int, whole: int, empty: float = float("nan")) -> float:
    return round(part / whole, 4) if whole else empty


def scores(present: AnswerRun, absent: AnswerRun) -> dict[str, Any]:
    """The reported numbers of ``eval --answers``."""
    return {
        "questions": present.asked,
        "questions_with_gold_answer": present.with_gold,
        "answer_recall": _share(present.recalled, present.with_gold),
        "citation_precision": _share(present.citations_valid, present.citations, 1.0),
        "citations": present.citations,
        "citations_dropped": present.citations_dropped,
        "refusal_rate_evidence_present": _share(present.refused, present.asked),
        "refusal_rate_evidence_absent": _share(absent.refused, absent.asked),
    }
