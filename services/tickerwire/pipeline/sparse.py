"""BM25-style sparse vectors, computed client-side so every vector back end stores the same thing.

A document vector holds, per term, BM25's saturated term frequency
``tf·(k1+1) / (tf + k1·(1 − b + b·dl/avgdl))``; a query vector holds 1.0 per unique term. The
index multiplies in the IDF at query time (Qdrant's ``idf`` modifier), so the dot product of the
two is the BM25 score. Term indices are a stable 32-bit hash of the normalized term.

Pure: no I/O, nothing from adapters or stages.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

from tickerwire.core.ports import SparseVector

#: English function words (the classic NLTK list, minus the negations and comparatives that
#: change a financial statement's meaning: no, not, nor, up, down, over, under, above, below,
#: more, most, against, off, out).
_STOPWORDS_TEXT = """
    a about after again all am an and any are as at be because been before being between both
    but by can could did do does doing during each few for from further had has have having he
    her here hers herself him himself his how i if in into is it its itself just me my myself
    of on once only or other our ours ourselves own same she should so some such than that the their
    theirs them themselves then there these they this those through to too until very was we
    were what when where which while who whom why will with would you your yours yourself
    yourselves s t d ll m o re ve y
"""
STOPWORDS: frozenset[str] = frozenset(_STOPWORDS_TEXT.split())

# Order matters: the first alternative that matches at a position wins.
_TOKEN_RE = re.compile(
    r"""
    \$(?P<cashtag>[a-z]{1,6}(?:\.[a-z]{1,2})?)\b                   # $aapl, $brk.b
    | (?P<form>\d+-[a-z]+)\b                                      # 10-k, 8-k, 20-f
    | (?P<number>
        [-+]?\$?\d+(?:,\d{3})*(?:\.\d+)?                           # 1,234.5  -3.2  $4.5
        (?:\s?%|(?:bn|mn|m|k|b|x)\b)?                              # 12%  4.5bn  3x
      )
    | (?P<word>
        [a-z0-9]+(?:[.&'’\-_/][a-z0-9]+)*                          # brk.b  at&t  10-k  fixed-price
      )
    """,
    re.VERBOSE,
)
_POSSESSIVE_RE = re.compile(r"['’]s$")


def stable_hash(term: str) -> int:
    """The term's index: the first 4 bytes of its blake2b digest, as an unsigned 32-bit int."""
    return int.from_bytes(hashlib.blake2b(term.encode("utf-8"), digest_size=4).digest(), "little")


def light_stem(word: str) -> str:
    """A light English plural stemmer (Harman's S-stemmer): ``liabilities``→``liability``."""
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and not word.endswith(("eies", "aies")):
        return word[:-3] + "y"
    if word.endswith("es") and not word.endswith(("aes", "ees", "oes")):
        return word[:-1]
    if word.endswith("s") and not word.endswith(("us", "ss")):
        return word[:-1]
    return word


@dataclass(frozen=True, slots=True)
class BM25Params:
    """BM25 document-side parameters; ``avgdl`` is the expected terms per chunk.

    The defaults (Anserini's k1=0.9, b=0.4) won on tatqa, and b=0.4 keeps scores insensitive to
    ``avgdl`` (hit@10 0.784 / 0.781 / 0.779 at avgdl 35 / 64 / 100; bench/sparse_eval.py).
    """

    k1: float = 0.9
    b: float = 0.4
    avgdl: float = 64.0

    def __post_init__(self) -> None:
        if self.k1 < 0 or not 0 <= self.b <= 1 or self.avgdl <= 0:
            raise ValueError("need k1 >= 0, 0 <= b <= 1 and avgdl > 0")


class BM25Encoder:
    """Text → BM25 sparse vectors. Instances are immutable and safe to share across tasks."""

    def __init__(
        self,
        params: BM25Params | None = None,
        *,
        stopwords: Iterable[str] = STOPWORDS,
        stemmer: Callable[[str], str] | None = None,
        split_compounds: bool = True,
    ) -> None:
        """``split_compounds`` also emits the parts of ``fixed-price`` or ``brk.b``.

        No stemming by default: :func:`light_stem` cost 0.5–1 point of hit@10 on tatqa.
        """
        self.params = params or BM25Params()
        self._stopwords = frozenset(stopwords)
        self._stemmer = stemmer
        self._split_compounds = split_compounds
        self._index = lru_cache(maxsize=1 << 17)(stable_hash)

    def tokenize(self, text: str) -> list[str]:
        """Normalized terms: lowercased, stopwords dropped, tickers and numbers kept whole."""
        text = unicodedata.normalize("NFKC", text).lower()
        terms: list[str] = []
        for match in _TOKEN_RE.finditer(text):
            kind = match.lastgroup
            token = match.group(kind or 0)
            if kind in ("cashtag", "form"):
                terms.append(token)
            elif kind == "number":
                terms.append(self._number(token))
            else:
                self._word(token, terms)
        return terms

    def term_index(self, term: str) -> int:
        """The sparse index of one normalized term."""
        return self._index(term)

    def encode_document(self, text: str) -> SparseVector:
        """BM25 document weights (tf saturation and length normalization; no IDF)."""
        terms = self.tokenize(text)
        if not terms:
            return SparseVector(indices=(), values=())
        k1, b, avgdl = self.params.k1, self.params.b, self.params.avgdl
        norm = k1 * (1.0 - b + b * len(terms) / avgdl)
        weights: dict[int, float] = {}
        for term, tf in Counter(terms).items():
            index = self._index(term)
            # Two terms that hash alike add up, as one term with their summed weight would.
            weights[index] = weights.get(index, 0.0) + tf * (k1 + 1.0) / (tf + norm)
        return _sorted(weights)

    def encode_query(self, text: str) -> SparseVector:
        """1.0 per unique query term; the index applies the IDF."""
        return _sorted({self._index(term): 1.0 for term in self.tokenize(text)})

    def _number(self, token: str) -> str:
        token = token.replace(" ", "").lstrip("+-$")
        return token.lstrip("$")

    def _word(self, token: str, out: list[str]) -> None:
        token = _POSSESSIVE_RE.sub("", token)
        parts = re.split(r"[.&'’\-_/]", token) if self._split_compounds else []
        if len(parts) > 1:
            self._keep(token, out, stem=False)
            for part in parts:
                self._keep(part, out, stem=True)
        else:
            self._keep(token, out, stem=True)

    def _keep(self, term: str, out: list[str], *, stem: bool) -> None:
        if not term or term in self._stopwords:
            return
        if stem and self._stemmer is not None:
            term = self._stemmer(term)
        out.append(term)


def _sorted(weights: dict[int, float]) -> SparseVector:
    indices = tuple(sorted(weights))
    return SparseVector(indices=indices, values=tuple(weights[i] for i in indices))
