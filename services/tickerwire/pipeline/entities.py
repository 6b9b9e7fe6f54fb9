"""Which company names mean which tickers, learned from the documents themselves (pure).

The preprocess stage calls :func:`observations` on every upsert and publishes what it finds to the
compacted ``tickerwire.entities`` topic; the query service folds that topic into an in-memory
registry (:class:`tickerwire.query.understanding.EntityRegistry`). Nothing here knows any company:
names come from a document's ``metadata.company``, from a title that opens with a registered
company name (one that ends in a legal form such as "Inc." or "Corporation"), and from mentions
such as "Tesla Inc. (NASDAQ: TSLA)" whose ticker the document itself lists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# entity/v1 records go to ENTITIES_TOPIC, keyed by EntityObservation.key
from tickerwire.core.topics import ENTITIES_TOPIC as ENTITIES_TOPIC

#: Words of a legal form that end a registered company name. A rule about how companies are
#: named ("X, Inc.", "X Corporation", "X & Co."), not a list of companies.
LEGAL_FORMS = frozenset(
    {
        "inc",
        "incorporated",
        "corp",
        "corporation",
        "co",
        "company",
        "companies",
        "ltd",
        "limited",
        "plc",
        "llc",
        "lp",
        "llp",
        "sa",
        "ag",
        "nv",
        "se",
        "group",
        "holdings",
    }
)

#: Longest name, in words, that is learned or looked for in a question.
MAX_NAME_WORDS = 6

_WORD = re.compile(r"[a-z0-9]+")
#: A web domain written as a name ("Amazon.com") is the name without its top-level domain.
_DOMAIN = re.compile(r"(?<=\w)\.(?:com|net|org|io)\b", re.IGNORECASE)
_POSSESSIVE = re.compile(r"(?<=\w)['\u2019]s\b", re.IGNORECASE)
#: A registered name at the start of a title: capitalised words (or "&", "of", "and") that end
#: in a legal form, e.g. "Tesla, Inc." or "JPMorgan Chase & Co.".
_TITLE_NAME = re.compile(
    r"^\s*((?:(?:[A-Z0-9][\w.\-]*|&|and|of|the),?\s+){0,5}?"
    r"(?:Inc|Incorporated|Corp|Corporation|Co|Company|Ltd|Limited|plc|PLC|LLC|LP|SA|AG|NV|SE"
    r"|Group|Holdings)\b\.?)"
)
#: "Name (EXCHANGE: TICKER)": up to six capitalised words before a parenthesised exchange and
#: ticker, as newswires write them.
_EXCHANGE_MENTION = re.compile(
    r"((?:[A-Z0-9][\w.\-]*,?[ \t]+(?:(?:&|of|and|the)[ \t]+)?){1,6})"
    r"\((?:[A-Z][A-Za-z]*[ \t]*)+:[ \t]*([A-Z][A-Z0-9.\-]{0,11})\)"
)
#: How much of a body is searched for exchange mentions (the lead names the company).
BODY_PREFIX_CHARS = 2000


def name_words(text: str) -> list[str]:
    """The words of a name or question as matched: lower case, possessives and punctuation gone."""
    return _WORD.findall(_DOMAIN.sub("", _POSSESSIVE.sub("", text)).lower())


def normalize_name(name: str) -> str:
    """The registry key of a company name: words without legal forms, joined without spaces.

    "Tesla, Inc.", "TESLA INC" and "Tesla" all give ``"tesla"``; "JPMorgan Chase & Co." gives
    ``"jpmorganchase"``; "Exxon Mobil Corporation" and "ExxonMobil" both give ``"exxonmobil"``.
    Returns ``""`` when nothing but legal forms is left (e.g. "The Company").
    """
    words = name_words(name)
    while words and words[0] == "the":
        words = words[1:]
    while words and words[-1] in LEGAL_FORMS | {"and"}:
        words = words[:-1]
    return "".join(words)


@dataclass(frozen=True, slots=True)
class EntityObservation:
    """One document's evidence that ``name`` (as written) stands for ``ticker``.

    ``name`` is None for the bare fact that ``ticker`` exists in the corpus.
    """

    ticker: str
    name: str | None = None

    @property
    def key(self) -> str:
        """The compaction key: one record per (ticker, normalised name)."""
        return self.ticker if self.name is None else f"{self.ticker}:{normalize_name(self.name)}"


def _usable(name: str) -> bool:
    norm = normalize_name(name)
    return len(norm) >= 2 and len(name_words(name)) <= MAX_NAME_WORDS


def _last_clause(words: str) -> str:
    """The name in a run of capitalised words: what follows the last comma, unless that is only a
    legal form ("On Monday, Tesla, Inc." gives "Tesla, Inc.")."""
    parts = [p.strip(" &") for p in words.strip(" ,&").split(",")]
    name = parts.pop()
    while parts and not normalize_name(name):
        name = f"{parts.pop()}, {name}"
    return name


def observations(
    *,
    tickers: tuple[str, ...] | list[str],
    title: str | None,
    body: str | None,
    metadata: dict[str, Any],
) -> list[EntityObservation]:
    """What a document says about names and tickers, in a stable order without duplicates.

    - every ticker the document lists (so questions can name it);
    - ``metadata.company`` for each ticker, when the document lists tickers;
    - a title that opens with a registered company name, when the document lists one ticker;
    - "Name (EXCHANGE: TICKER)" in the title or the body's lead, for a ticker the document lists.
    """
    found: dict[str, EntityObservation] = {}

    def add(obs: EntityObservation) -> None:
        found.setdefault(obs.key, obs)

    for ticker in tickers:
        add(EntityObservation(ticker=ticker))
    company = metadata.get("company")
    if isinstance(company, str) and _usable(company):
        for ticker in tickers:
            add(EntityObservation(ticker=ticker, name=company.strip()))
    if title and len(tickers) == 1:
        m = _TITLE_NAME.match(title)
        if m and _usable(m.group(1)):
            add(EntityObservation(ticker=tickers[0], name=m.group(1).strip(" ,")))
    listed = set(tickers)
    for text in (title or "", (body or "")[:BODY_PREFIX_CHARS]):
        for m in _EXCHANGE_MENTION.finditer(text):
            name, ticker = _last_clause(m.group(1)), m.group(2)
            if ticker in listed and _usable(name):
                add(EntityObservation(ticker=ticker, name=name))
    return list(found.values())
