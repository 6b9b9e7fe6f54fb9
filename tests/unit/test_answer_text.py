"""Pure answer logic: units, offline composition, citation checks (also while streaming)."""

from __future__ import annotations

import random

import pytest

from tickerwire.core.ports import AnswerUnit, Passage
from tickerwire.query.answer_text import (
    CitationStream,
    check_citations,
    compose_offline,
    evidence_score,
    split_sentences,
    split_units,
    table_rows,
)


def passage(n: int, *units: tuple[str, float, float]) -> Passage:
    return Passage(
        n=n,
        doc_id=f"d{n}",
        chunk_id=f"c{n}",
        title=f"t{n}",
        published_at=None,
        text=" ".join(u[0] for u in units),
        units=tuple(
            AnswerUnit(text=t, cosine=c, overlap=o, position=i) for i, (t, c, o) in enumerate(units)
        ),
    )


def test_sentences_split_at_end_punctuation_but_not_at_abbreviations_or_decimals() -> None:
    text = (
        "Apple Inc. said revenue was $94.9 billion. The U.S. share grew 3.5%. Next quarter?  Yes."
    )
    assert split_sentences(text) == [
        "Apple Inc. said revenue was $94.9 billion.",
        "The U.S. share grew 3.5%.",
        "Next quarter?",
        "Yes.",
    ]


def test_table_rows_name_their_columns_and_keep_numbers_as_written() -> None:
    lines = [
        "| | Years Ended September 30, |",
        "| 2019 | 2018",
        "Fixed Price | $ 1,452.4 | $ 1,146.2",
        "Total sales | $1,496.5 | $1,202.9",
    ]
    assert table_rows(lines) == [
        "Fixed Price: $ 1,452.4 (2019); $ 1,146.2 (2018).",
        "Total sales: $1,496.5 (2019); $1,202.9 (2018).",
    ]


def test_a_first_row_without_numbers_is_the_header_and_a_caption_prefixes_rows() -> None:
    text = "Revenue by market (in millions)\nMarket | Q3 2026 | Change\nData Center | $61,210 | 47%"
    assert split_units(text) == [
        "Revenue by market (in millions)",
        "Revenue by market (in millions): Data Center: $61,210 (Q3 2026); 47% (Change).",
    ]


def test_rows_without_a_header_are_label_and_values() -> None:
    assert table_rows(["Revenue | $68,400", "Net income | $38,700"]) == [
        "Revenue: $68,400.",
        "Net income: $38,700.",
    ]


def test_offline_answer_cites_every_sentence_and_quotes_the_best_units_first() -> None:
    passages = [
        passage(
            1, ("Revenue was $68.4 billion, up 42%.", 0.8, 1.0), ("Weather was fine.", 0.1, 0.0)
        ),
        passage(2, ("Data Center revenue was $61.2 billion.", 0.82, 0.8)),
    ]
    answer = compose_offline(passages)
    assert (
        answer
        == "Revenue was $68.4 billion, up 42%. [1] Data Center revenue was $61.2 billion. [2]"
    )
    checked = check_citations(answer, 2)
    assert checked.cited == (1, 2)
    assert checked.dropped == 0


def test_between_equal_sentences_the_higher_ranked_chunk_is_quoted_first() -> None:
    passages = [
        passage(1, ("Revenue for the quarter was $68.4 billion.", 0.8, 0.8)),
        passage(2, ("NVIDIA revenue was $68.4 billion in the quarter.", 0.81, 0.8)),
    ]
    assert compose_offline(passages).startswith("Revenue for the quarter was $68.4 billion. [1]")


def test_offline_answer_skips_units_far_below_the_best_and_repeats() -> None:
    passages = [
        passage(1, ("Revenue was $68.4 billion.", 0.9, 1.0)),
        passage(2, ("Revenue was $68.4 billion.", 0.9, 1.0), ("Gaming fell 7%.", 0.3, 0.0)),
    ]
    assert compose_offline(passages) == "Revenue was $68.4 billion. [1]"
    assert compose_offline([passage(1)]) == ""


def test_evidence_is_the_best_unit_cosine() -> None:
    assert (
        evidence_score(
            [passage(1, ("a b c d e f g h i", 0.4, 0.0)), passage(2, ("x" * 20, 0.7, 1.0))]
        )
        == 0.7
    )
    assert evidence_score([passage(1)]) is None


@pytest.mark.parametrize(
    ("raw", "text", "cited", "dropped"),
    [
        ("Revenue rose [1].", "Revenue rose [1].", (1,), 0),
        ("Revenue rose [9].", "Revenue rose.", (), 1),
        ("A [1, 9]. B [2][7].", "A [1]. B [2].", (1, 2), 2),
        ("No citation at all.", "No citation at all.", (), 0),
        ("Zero [0] and [5].", "Zero and [5].", (5,), 1),
    ],
)
def test_citations_naming_no_passage_are_dropped_and_counted(
    raw: str, text: str, cited: tuple[int, ...], dropped: int
) -> None:
    checked = check_citations(raw, 5)
    assert (checked.text, checked.cited, checked.dropped) == (text, cited, dropped)


@pytest.mark.parametrize("seed", range(20))
def test_streamed_deltas_add_up_to_the_checked_answer(seed: int) -> None:
    raw = "  NVIDIA reported $68.4 billion [1]. Data [9] center rose [2, 9]. Odd [x] and [3 "
    rng = random.Random(seed)
    stream = CitationStream(5)
    shown = []
    i = 0
    while i < len(raw):
        j = i + rng.randint(1, 6)
        shown.append(stream.feed(raw[i:j]))
        i = j
    shown.append(stream.finish())
    assert "".join(shown) == check_citations(raw, 5).text
    assert "[9" not in "".join(shown)
