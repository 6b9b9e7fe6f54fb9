"""Pure answer logic: answer units (sentences and table rows), offline composition, citations.

No I/O here: the ask use case embeds the units and hands their scores in; the answer models and
the HTTP layer only call these functions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from tickerwire.core.ports import AnswerUnit, Passage

#: The one refusal text of /v1/ask (``grounded: false``, no citations).
REFUSAL = "Not enough evidence in the index to answer this."

#: Units of one chunk that are scored at most (a 256-token chunk has 5-15 sentences or rows).
MAX_UNITS_PER_CHUNK = 32
#: Sentences and rows the offline answer quotes at most.
MAX_ANSWER_UNITS = 3
#: How far under the best unit's score another unit may be and still be quoted.
ANSWER_MARGIN = 0.08
#: Weight of term overlap (share of the question's terms a unit contains) next to the cosine.
OVERLAP_WEIGHT = 0.3
#: Units shorter than this many characters carry no answer on their own ("Q3.", "Total").
MIN_UNIT_CHARS = 12

# Sentence boundaries: end punctuation, whitespace, then something that starts a sentence.
# A regex rather than a library: pysbd (the usual choice) is unmaintained since 2021 and raises
# SyntaxWarnings on import under Python 3.11 (errors in our test run); nltk's punkt needs a data
# download, which this deployment cannot do. Financial prose breaks a naive split mostly at
# abbreviations ("Inc.", "U.S.", "No."), which the look-behind list below keeps together;
# decimals ("$68.4 billion") never split because a boundary needs whitespace after the period.
_ABBREVIATIONS = (
    "Inc",
    "Corp",
    "Co",
    "Ltd",
    "Mr",
    "Mrs",
    "Ms",
    "Dr",
    "St",
    "No",
    "vs",
    "approx",
    "U.S",
    "U.K",
    "e.g",
    "i.e",
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Sept",
    "Oct",
    "Nov",
    "Dec",
)
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"”’)]?\s+(?=[\"“(\[$]?[A-Z0-9])")
_ABBREV_END = re.compile(
    r"(?:\b(?:" + "|".join(re.escape(a) for a in _ABBREVIATIONS) + r")|\b[A-Z])\.$"
)
_TABLE_SEPARATOR = re.compile(r"^[\s|:\-+]+$")
_NUMBER_CELL = re.compile(
    r"^[(\-−+]?\s*[$€£¥]?\s*[(\-−+]?\d[\d,.\s]*(?:%|bn|m|k|x)?\)?$", re.IGNORECASE
)
_SPACES = re.compile(r"\s+")
_CITATION = re.compile(r"(\s*)\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
# What may still become a citation at the end of a streamed buffer: spaces, "[", digits, commas.
_PENDING_CITATION = re.compile(r"\s*(?:\[[\d,\s]*)?$")


def split_sentences(paragraph: str) -> list[str]:
    """The sentences of one paragraph, in order, whitespace collapsed."""
    text = _SPACES.sub(" ", paragraph).strip()
    if not text:
        return []
    out: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        candidate = text[start : match.start()].rstrip('"”’)')
        if _ABBREV_END.search(candidate):
            continue  # "Apple Inc. said" is one sentence
        out.append(text[start : match.start()].strip())
        start = match.end()
    out.append(text[start:].strip())
    return [s for s in out if s]


def _cells(line: str) -> list[str]:
    # The cleaner writes rows as "a | b | c" (outer markdown pipes removed), so a leading "|"
    # is an empty first cell, as in the header rows of TAT-QA and HTML tables.
    return [_SPACES.sub(" ", c.replace("**", "")).strip() for c in line.split("|")]


def _is_table_line(line: str) -> bool:
    return "|" in line and len(_cells(line)) >= 2


def _is_number(cell: str) -> bool:
    return bool(_NUMBER_CELL.match(cell))


def table_rows(lines: Sequence[str], caption: str = "") -> list[str]:
    """One readable unit per data row: ``caption: label: value (column); value (column).``

    Header rows are the leading rows whose first cell is empty (TAT-QA and HTML tables), or a
    first row with no numeric cell; the last of them names the columns. Cell text is kept as
    written, so numbers are quoted exactly.
    """
    rows = [_cells(line) for line in lines if not _TABLE_SEPARATOR.match(line)]
    if not rows:
        return []
    lead = 0
    while lead < len(rows) - 1 and not rows[lead][0]:
        lead += 1
    if not lead and len(rows) > 1 and not any(_is_number(c) for c in rows[0][1:] if c):
        lead = 1
    header, body = (rows[lead - 1] if lead else []), rows[lead:]
    prefix = f"{caption.rstrip(':')}: " if caption else ""
    out: list[str] = []
    for row in body:
        label, values = row[0], row[1:]
        names = header[1:]
        parts = []
        for i, value in enumerate(values):
            if not value:
                continue
            name = names[i] if i < len(names) else ""
            parts.append(f"{value} ({name})" if name else value)
        if not parts:
            continue
        text = prefix + (f"{label}: {'; '.join(parts)}" if label else "; ".join(parts))
        out.append(text if text.endswith(".") else f"{text}.")
    return out


def split_units(text: str) -> list[str]:
    """The sentences and table rows of a chunk, in order (at most MAX_UNITS_PER_CHUNK).

    A short line right above a table (no end punctuation) is its caption and prefixes each row,
    so a row keeps its scale ("Revenue (in millions): ...").
    """
    units: list[str] = []
    table: list[str] = []
    paragraph: list[str] = []
    caption = ""

    def flush_paragraph() -> None:
        if paragraph:
            units.extend(split_sentences(" ".join(paragraph)))
            paragraph.clear()

    def flush_table() -> None:
        nonlocal caption
        if table:
            units.extend(table_rows(table, caption))
            table.clear()
        caption = ""

    for line in text.splitlines():
        if _is_table_line(line):
            if not table:
                last = paragraph[-1].strip() if paragraph else ""
                caption = last if last and len(last) <= 100 and last[-1] not in ".!?" else ""
            flush_paragraph()
            table.append(line)
        elif not line.strip():
            flush_paragraph()
            flush_table()
        else:
            flush_table()
            paragraph.append(line)
    flush_paragraph()
    flush_table()
    return [u for u in units if len(u) >= MIN_UNIT_CHARS][:MAX_UNITS_PER_CHUNK]


def term_overlap(question_terms: Iterable[str], unit_terms: Iterable[str]) -> float:
    """Share of the question's distinct terms that the unit contains (0 to 1)."""
    wanted = set(question_terms)
    if not wanted:
        return 0.0
    return len(wanted & set(unit_terms)) / len(wanted)


def score_units(
    texts: Sequence[str],
    cosines: Sequence[float],
    question: str,
    tokenize: Callable[[str], list[str]],
) -> tuple[AnswerUnit, ...]:
    """Units with their cosine to the question and their term overlap with it."""
    question_terms = tokenize(question)
    return tuple(
        AnswerUnit(
            text=text,
            cosine=float(cosine),
            overlap=term_overlap(question_terms, tokenize(text)),
            position=i,
        )
        for i, (text, cosine) in enumerate(zip(texts, cosines, strict=True))
    )


def unit_score(unit: AnswerUnit) -> float:
    """How well a unit answers the question: cosine plus weighted term overlap."""
    return unit.cosine + OVERLAP_WEIGHT * unit.overlap


def evidence_score(passages: Sequence[Passage]) -> float | None:
    """The best question-to-unit cosine over all passages (None when there is no unit).

    Hybrid RRF scores are ranks, not evidence: the same score 1/(k+1) tops every result list,
    relevant or not. The cosine between the question and the closest sentence or table row is
    an absolute measure; bench/refusal_calibration.py picks the threshold on it.
    """
    cosines = [u.cosine for p in passages for u in p.units]
    return max(cosines) if cosines else None


def compose_offline(passages: Sequence[Passage]) -> str:
    """A short answer quoting the best units, each sentence followed by its ``[n]``.

    The best unit overall comes first; up to MAX_ANSWER_UNITS - 1 more follow when they score
    within ANSWER_MARGIN of it, skipping repeats. Empty when no passage has a unit.
    """
    scored = [(unit_score(u), p.n, u) for p in passages for u in p.units]
    if not scored:
        return ""
    scored.sort(key=lambda item: (-item[0], item[1], item[2].position))
    best = scored[0][0]
    chosen: list[tuple[int, AnswerUnit]] = []
    seen: set[str] = set()
    for score, n, unit in scored:
        if len(chosen) == MAX_ANSWER_UNITS or score < best - ANSWER_MARGIN:
            break
        key = unit.text.casefold()
        if key in seen:
            continue
        seen.add(key)
        chosen.append((n, unit))
    sentences = []
    for n, unit in chosen:
        text = unit.text if unit.text[-1] in ".!?" else f"{unit.text}."
        sentences.append(f"{text} [{n}]")
    return " ".join(sentences)


@dataclass(frozen=True, slots=True)
class CheckedAnswer:
    """An answer after citation checking: the text, the valid citations and the dropped count."""

    text: str
    cited: tuple[int, ...]
    dropped: int


def _substitute(text: str, passages: int, cited: list[int]) -> tuple[str, int]:
    dropped = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal dropped
        numbers = [int(x) for x in match.group(2).split(",")]
        valid = [n for n in numbers if 1 <= n <= passages]
        dropped += len(numbers) - len(valid)
        for n in valid:
            if n not in cited:
                cited.append(n)
        if not valid:
            return ""
        return f"{match.group(1)}[{', '.join(str(n) for n in valid)}]"

    return _CITATION.sub(replace, text), dropped


def check_citations(text: str, passages: int) -> CheckedAnswer:
    """Keep citations ``[n]`` with 1 <= n <= ``passages``; drop and count the others.

    ``[1, 9]`` with five passages becomes ``[1]``; ``[9]`` alone disappears with the space
    before it. ``cited`` lists the valid numbers in order of first appearance.
    """
    cited: list[int] = []
    clean, dropped = _substitute(text, passages, cited)
    return CheckedAnswer(text=clean.strip(), cited=tuple(cited), dropped=dropped)


class CitationStream:
    """Checks citations while an answer streams: the deltas it emits add up to exactly
    ``check_citations(raw).text``.

    ``feed`` returns what may be shown now; a trailing ``[12`` (and the spaces before it) is held
    until it is complete, because a citation is only checked whole. ``finish`` returns the rest.
    """

    def __init__(self, passages: int) -> None:
        self._passages = passages
        self._pending = ""
        self._raw: list[str] = []
        self._cited: list[int] = []
        self._started = False

    def feed(self, delta: str) -> str:
        """The part of the answer so far that is safe to show."""
        self._raw.append(delta)
        buffer = self._pending + delta
        match = _PENDING_CITATION.search(buffer)
        cut = match.start() if match else len(buffer)
        ready, self._pending = buffer[:cut], buffer[cut:]
        return self._emit(ready)

    def finish(self) -> str:
        """Whatever was held back, checked."""
        rest, self._pending = self._pending, ""
        return self._emit(rest).rstrip()

    def _emit(self, text: str) -> str:
        # Pieces are cut only outside a citation and before trailing spaces, so substituting
        # piece by piece gives the same text as substituting the whole answer.
        out, _ = _substitute(text, self._passages, self._cited)
        if not self._started:
            out = out.lstrip()
            self._started = bool(out)
        return out

    @property
    def raw(self) -> str:
        """Everything the model said, unchecked."""
        return "".join(self._raw)
