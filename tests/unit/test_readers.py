"""Feed readers: every format becomes valid raw documents, every bad input a located rejection."""

from __future__ import annotations

import json
import os
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.document_support import raw_document as raw

from tickerwire.core.errors import TooLargeError, ValidationError
from tickerwire.core.schemas import schema_dir, validate
from tickerwire.produce.readers import (
    Accepted,
    ReadResult,
    Rejection,
    check_document,
    discover,
    extract_ticker_mentions,
    read_paths,
)

LIMIT = 10_000
SAMPLE = schema_dir().parent / "deploy" / "sample"


def read(*paths: str | Path, limit: int = LIMIT) -> list[ReadResult]:
    return list(read_paths(paths, max_body_bytes=limit))


def accepted(results: list[ReadResult]) -> list[Accepted]:
    return [r for r in results if isinstance(r, Accepted)]


def rejected(results: list[ReadResult]) -> list[Rejection]:
    return [r for r in results if isinstance(r, Rejection)]


def write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def assert_all_valid(results: list[ReadResult]) -> None:
    for item in accepted(results):
        validate("raw-document.v1", item.document.to_json_dict())


# --- JSONL ------------------------------------------------------------------------------------


def test_jsonl_yields_each_valid_line_with_its_line_number(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "docs.jsonl",
        [json.dumps(raw("a")).encode(), b"", b"   ", json.dumps(raw("b", version=2)).encode()],
    )
    results = read(path)
    assert [(r.location, r.document.doc_id) for r in accepted(results)] == [
        (f"{path}:1", "a"),
        (f"{path}:4", "b"),
    ]
    assert not rejected(results)
    assert_all_valid(results)


def test_jsonl_bad_lines_are_rejected_with_location_and_the_rest_still_read(tmp_path: Path) -> None:
    big = "x" * (LIMIT + 1)
    path = write_lines(
        tmp_path / "mixed.ndjson",
        [
            json.dumps(raw("good-1")).encode(),
            b'{"schema": "raw-document/v1", "doc_id": ',
            json.dumps(raw("bad-date", published_at="yesterday")).encode(),
            b'{"title": "caf\xe9"}',
            b"[1, 2, 3]",
            json.dumps(raw("too-big", body=big)).encode(),
            json.dumps(raw("bad id!")).encode(),
            json.dumps(raw("good-2")).encode(),
        ],
    )
    results = read(path)
    assert [r.document.doc_id for r in accepted(results)] == ["good-1", "good-2"]
    got = {r.location: r for r in rejected(results)}
    assert set(got) == {f"{path}:{n}" for n in (2, 3, 4, 5, 6, 7)}
    assert got[f"{path}:2"].error_class == "DecodeError"
    assert got[f"{path}:2"].reason == "invalid JSON at column 41: Expecting value"
    assert got[f"{path}:3"].reason == "$.published_at: 'yesterday' is not a 'date-time'"
    assert got[f"{path}:3"].error_class == "ValidationError"
    assert got[f"{path}:4"].error_class == "DecodeError"
    assert "invalid UTF-8 at byte 14" in got[f"{path}:4"].reason
    assert got[f"{path}:5"].reason == "$: expected a JSON object, got list"
    assert got[f"{path}:6"].error_class == "TooLargeError"
    assert f"over the limit of {LIMIT:,}" in got[f"{path}:6"].reason
    assert "$.doc_id: 'bad id!' does not match" in got[f"{path}:7"].reason
    assert str(got[f"{path}:3"]) == f"{path}:3: $.published_at: 'yesterday' is not a 'date-time'"


def test_jsonl_line_without_schema_is_a_raw_document_v1(tmp_path: Path) -> None:
    line = {k: v for k, v in raw("no-tag").items() if k != "schema"}
    delete = {"doc_id": "gone", "op": "delete", "version": 3}
    path = write_lines(
        tmp_path / "untagged.jsonl", [json.dumps(d).encode() for d in (line, delete)]
    )
    results = read(path)
    assert not rejected(results)
    assert [r.document.doc_id for r in accepted(results)] == ["no-tag", "gone"]
    for item in accepted(results):
        assert json.loads(item.document.to_bytes())["schema"] == "raw-document/v1"
    assert_all_valid(results)
    assert "schema" not in line, "the caller's record is not modified"


@pytest.mark.parametrize("tag", ["raw-document/v2", "chunk/v1", None, 1])
def test_jsonl_line_with_another_schema_tag_is_refused_with_the_reason(
    tmp_path: Path, tag: object
) -> None:
    path = write_lines(tmp_path / "other.jsonl", [json.dumps(raw("x", schema=tag)).encode()])
    (rejection,) = read(path)
    assert isinstance(rejection, Rejection)
    assert rejection.error_class == "ValidationError"
    assert rejection.reason == (
        f"$.schema: {tag!r} is not a record this producer sends; "
        "set it to 'raw-document/v1' or leave it out"
    )


def test_the_producer_check_defaults_the_schema_too() -> None:
    doc = {k: v for k, v in raw("sdk").items() if k != "schema"}
    assert check_document(doc, max_body_bytes=LIMIT).schema_ == "raw-document/v1"


def test_jsonl_body_limit_counts_utf8_bytes_not_characters(tmp_path: Path) -> None:
    body = "€" * 10  # 30 bytes of UTF-8
    path = write_lines(tmp_path / "a.jsonl", [json.dumps(raw(body=body)).encode()])
    assert accepted(read(path, limit=30))
    (rejection,) = rejected(read(path, limit=29))
    assert rejection.error_class == "TooLargeError"
    assert "30 bytes" in rejection.reason


def test_jsonl_tolerates_a_byte_order_mark_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(raw("a")).encode() + b"\r\n")
    (item,) = read(path)
    assert isinstance(item, Accepted)


def test_jsonl_delete_records_need_only_the_key_fields(tmp_path: Path) -> None:
    line = {"schema": "raw-document/v1", "doc_id": "gone", "op": "delete", "version": 9}
    path = write_lines(tmp_path / "d.jsonl", [json.dumps(line).encode()])
    (item,) = read(path)
    assert isinstance(item, Accepted)
    assert item.document.op == "delete"
    assert json.loads(item.document.to_bytes()) == line


# --- CSV market statistics --------------------------------------------------------------------

CSV_HEADER = "ticker,price,change,change_pct,volume,as_of"


def test_csv_rows_become_market_stats_documents(tmp_path: Path) -> None:
    path = tmp_path / "stats.csv"
    path.write_text(
        f"{CSV_HEADER}\nAAPL,241.32,1.87,0.78,38412900,2026-11-27\n"
        "nvda,194.87,-0.94,-0.48%,162304500,2026-07-01T14:30:00-04:00\n",
        encoding="utf-8",
    )
    results = read(path)
    assert not rejected(results)
    first, second = accepted(results)
    doc = first.document
    assert first.location == f"{path}:2"
    assert doc.doc_id == "mkt:AAPL:2026-11-27"
    assert doc.doc_type == "market_stats"
    assert doc.title == "AAPL market statistics 2026-11-27"
    assert doc.tickers == ("AAPL",)
    # A bare date means that day's close in New York: 16:00 EST = 21:00 UTC in November.
    assert doc.published_at == datetime(2026, 11, 27, 21, 0, tzinfo=UTC)
    assert doc.body is not None
    assert "AAPL last traded at 241.32" in doc.body
    assert "up 1.87 (+0.78%)" in doc.body
    assert "38,412,900 shares" in doc.body
    assert doc.metadata == {
        "price": 241.32,
        "change": 1.87,
        "change_pct": 0.78,
        "volume": 38412900,
        "as_of": "2026-11-27",
    }
    assert doc.version == int(path.stat().st_mtime * 1000)
    assert second.document.doc_id == "mkt:NVDA:2026-07-01"
    assert second.document.published_at == datetime(2026, 7, 1, 18, 30, tzinfo=UTC)
    assert second.document.body is not None
    assert "down 0.94 (-0.48%)" in second.document.body
    assert_all_valid(results)


def test_csv_bad_rows_are_rejected_by_line_and_good_rows_kept(tmp_path: Path) -> None:
    path = tmp_path / "stats.csv"
    path.write_text(
        f"{CSV_HEADER}\n"
        "AAPL,241.32,1.87,0.78,38412900,2026-11-27\n"
        "MSFT,abc,1,1,100,2026-11-27\n"
        "XOM,119.72,-0.84,-0.70,12930500\n"
        "\n"
        "TSLA,402.60,8.75,2.22,71562800,last friday\n"
        "JPM,318.45,2.05,0.65,6210300,2026-11-27T16:00:00\n"
        "AAPL,241.00,1.50,0.60,1,2026-11-27\n"
        "bad ticker,1,1,1,1,2026-11-27\n"
        "GS,842.30,6.60,0.79,1.5,2026-11-27\n"
        "BAC,53.86,0.41,0.77,27744100,2026-11-27\n",
        encoding="utf-8",
    )
    results = read(path)
    assert [r.document.doc_id for r in accepted(results)] == [
        "mkt:AAPL:2026-11-27",
        "mkt:BAC:2026-11-27",
    ]
    reasons = {r.location.rsplit(":", 1)[1]: r.reason for r in rejected(results)}
    assert reasons == {
        "3": "price: 'abc' is not a number",
        "4": "expected 6 fields, got 5",
        "6": "as_of: 'last friday' is not a date (YYYY-MM-DD) or date-time",
        "7": "as_of: '2026-11-27T16:00:00' has no UTC offset",
        "8": "duplicate row for mkt:AAPL:2026-11-27 (first at line 2)",
        "9": "ticker: 'bad ticker' is not a ticker symbol",
        "10": "volume: '1.5' is not a whole number of shares",
    }


def test_csv_without_required_columns_is_rejected_at_line_1(tmp_path: Path) -> None:
    path = tmp_path / "stats.csv"
    path.write_text("ticker,price\nAAPL,1\n", encoding="utf-8")
    (rejection,) = read(path)
    assert isinstance(rejection, Rejection)
    assert rejection.location == f"{path}:1"
    assert rejection.reason.startswith("missing column(s) change, change_pct, volume, as_of")


def test_csv_extra_columns_go_to_metadata_and_source_is_used(tmp_path: Path) -> None:
    path = tmp_path / "stats.csv"
    path.write_text(
        f"{CSV_HEADER},source,currency\nSAP,230.5,1,0.4,100,2026-11-27,xetra-feed,EUR\n",
        encoding="utf-8",
    )
    (item,) = accepted(read(path))
    assert item.document.source == "xetra-feed"
    assert item.document.metadata["currency"] == "EUR"


@pytest.mark.parametrize(
    ("data", "location", "reason"),
    [
        (b"ticker,price\n\xff\xfe,1\n", 2, "invalid UTF-8 at byte 13"),
        (b"", 1, "empty CSV file"),
    ],
)
def test_csv_whole_file_problems_are_one_rejection(
    tmp_path: Path, data: bytes, location: int, reason: str
) -> None:
    path = tmp_path / "stats.csv"
    path.write_bytes(data)
    (rejection,) = read(path)
    assert isinstance(rejection, Rejection)
    assert rejection.location == f"{path}:{location}"
    assert reason in rejection.reason


# --- RSS / Atom -------------------------------------------------------------------------------

RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:tw="https://tickerwire.dev/ns/feed/1.0"
     xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel>
  <title>Test Wire</title>
  <language>en-gb</language>
  <item>
    <title>Apple ($AAPL) and Microsoft (NASDAQ: MSFT) rally</title>
    <link>https://wire.example.com/a?id=1&amp;x=2</link>
    <guid>https://wire.example.com/a?id=1&amp;x=2</guid>
    <pubDate>Fri, 27 Nov 2026 18:30:00 GMT</pubDate>
    <category>NVDA</category>
    <category>IPO</category>
    <category>Technology</category>
    <description>Plain words only.</description>
  </item>
  <item>
    <title>No date</title>
    <guid isPermaLink="false">wire:2</guid>
    <description>Body</description>
  </item>
  <item>
    <title>HTML body</title>
    <guid isPermaLink="false">wire:3</guid>
    <pubDate>Fri, 27 Nov 2026 17:00:00 GMT</pubDate>
    <tw:tickers>xom, CVX</tw:tickers>
    <content:encoded><![CDATA[<p>Oil <b>fell</b>.</p>]]></content:encoded>
  </item>
</channel>
</rss>
"""


def test_rss_items_become_news_documents(tmp_path: Path) -> None:
    path = tmp_path / "wire.rss"
    path.write_text(RSS, encoding="utf-8")
    results = read(path)
    first, third = accepted(results)
    (no_date,) = rejected(results)

    doc = first.document
    assert first.location == f"{path}:7"
    assert doc.doc_type == "news"
    assert doc.source == "Test Wire"
    assert doc.language == "en-gb"
    assert doc.doc_id.startswith("feed:")  # the guid has characters a doc_id cannot hold
    assert doc.metadata["guid"] == "https://wire.example.com/a?id=1&x=2"
    assert doc.url == "https://wire.example.com/a?id=1&x=2"
    assert doc.published_at == datetime(2026, 11, 27, 18, 30, tzinfo=UTC)
    assert doc.version == int(datetime(2026, 11, 27, 18, 30, tzinfo=UTC).timestamp() * 1000)
    assert doc.tickers == ("NVDA", "AAPL", "MSFT")
    assert doc.content_type == "text/plain"
    assert doc.body == "Plain words only."

    assert no_date.location == f"{path}:17"
    assert no_date.reason == "item has no parseable pubDate/published/updated date"

    html = third.document
    assert html.doc_id == "wire:3"
    assert html.content_type == "text/html"
    assert html.tickers == ("XOM", "CVX")
    assert html.body is not None
    assert "<b>fell</b>" in html.body
    assert_all_valid(results)


def test_atom_entries_use_updated_for_the_version(tmp_path: Path) -> None:
    path = tmp_path / "feed.atom"
    path.write_text(
        """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Atom Wire</title>
  <id>urn:uuid:60a76c80-d399-11d9-b93C-0003939e0af6</id>
  <updated>2026-11-27T12:00:00Z</updated>
  <entry>
    <title>JPMorgan update</title>
    <id>urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a</id>
    <link href="https://atom.example.com/jpm"/>
    <published>2026-11-27T10:00:00Z</published>
    <updated>2026-11-27T11:00:00Z</updated>
    <category term="NYSE:JPM"/>
    <summary type="text">Shares rose.</summary>
  </entry>
</feed>
""",
        encoding="utf-8",
    )
    (item,) = read(path)
    assert isinstance(item, Accepted)
    doc = item.document
    assert item.location == f"{path}:6"
    assert doc.doc_id == "urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a"
    assert doc.published_at == datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    assert doc.version == int(datetime(2026, 11, 27, 11, 0, tzinfo=UTC).timestamp() * 1000)
    assert doc.tickers == ("JPM",)
    assert doc.content_type == "text/plain"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"this is not xml at all", "not a valid RSS/Atom feed"),
        (b'<?xml version="1.0"?><rss version="2.0"><channel></channel></rss>', "feed has no items"),
        (b"<rss><channel><item><title>caf\xe9</title></item></channel></rss>", "invalid UTF-8"),
    ],
)
def test_unusable_feeds_are_one_rejection(tmp_path: Path, data: bytes, reason: str) -> None:
    path = tmp_path / "bad.xml"
    path.write_bytes(data)
    (rejection,) = read(path)
    assert isinstance(rejection, Rejection)
    assert rejection.location.startswith(f"{path}:")
    assert reason in rejection.reason


def test_feed_in_a_declared_legacy_encoding_is_read(tmp_path: Path) -> None:
    path = tmp_path / "latin1.rss"
    path.write_bytes(
        '<?xml version="1.0" encoding="ISO-8859-1"?><rss version="2.0"><channel><title>W</title>'
        "<item><title>Caf\xe9 stocks $KO</title><guid>w:1</guid>"
        "<pubDate>Fri, 27 Nov 2026 18:30:00 GMT</pubDate><description>Body</description></item>"
        "</channel></rss>".encode("latin-1")
    )
    (item,) = read(path)
    assert isinstance(item, Accepted)
    assert item.document.title == "Café stocks $KO"
    assert item.document.tickers == ("KO",)


def test_ticker_mentions() -> None:
    text = "Shares of $NVDA and (NYSE: BRK.B) rose; NASDAQ:AAPL too. US$5 and $5 are not tickers."
    assert extract_ticker_mentions(text) == ["NVDA", "BRK.B", "AAPL"]


# --- HTML -------------------------------------------------------------------------------------

HTML = """<!doctype html><html lang="en-US"><head>
<title>  Quarterly
 report </title>
<meta name="tickerwire:doc_id" content="filing:ACME:10-Q">
<meta name="tickerwire:tickers" content="ACME, brk.b">
<meta name="tickerwire:doc_type" content="filing">
<meta property="article:published_time" content="2026-11-19T21:00:00Z">
<meta property="og:url" content="https://filings.example.com/acme">
</head><body><table><tr><td>Revenue</td><td>$1</td></tr></table></body></html>
"""


def test_html_file_is_one_document_with_head_metadata(tmp_path: Path) -> None:
    path = tmp_path / "acme.html"
    path.write_text(HTML, encoding="utf-8")
    (item,) = read(path)
    assert isinstance(item, Accepted)
    doc = item.document
    assert item.location == f"{path}:1"
    assert doc.doc_id == "filing:ACME:10-Q"
    assert doc.title == "Quarterly report"
    assert doc.tickers == ("ACME", "BRK.B")
    assert doc.doc_type == "filing"
    assert doc.content_type == "text/html"
    assert doc.body == HTML
    assert doc.url == "https://filings.example.com/acme"
    assert doc.language == "en-US"
    assert doc.published_at == datetime(2026, 11, 19, 21, 0, tzinfo=UTC)


def test_html_filing_metadata_names_company_form_and_period(tmp_path: Path) -> None:
    path = tmp_path / "acme.html"
    path.write_text(
        HTML.replace(
            "</head>",
            '<meta name="tickerwire:company" content="Acme Corp">\n'
            '<meta name="tickerwire:form" content="10-Q">\n'
            '<meta name="tickerwire:fiscal_period" content="2026Q3">\n'
            '<meta name="tickerwire:fiscal_year" content="ignored">\n</head>',
        ),
        encoding="utf-8",
    )
    (item,) = read(path)
    assert isinstance(item, Accepted)
    assert item.document.metadata == {
        "file": "acme.html",
        "company": "Acme Corp",
        "form": "10-Q",
        "fiscal_period": "2026Q3",
    }


def test_html_without_metadata_falls_back_to_path_and_mtime(tmp_path: Path) -> None:
    folder = tmp_path / "site" / "2026 news"
    folder.mkdir(parents=True)
    path = folder / "story.htm"
    path.write_text("<html><body><p>Hello</p></body></html>", encoding="utf-8")
    os.utime(path, (1_790_000_000, 1_790_000_000))
    (item,) = read(tmp_path / "site")
    assert isinstance(item, Accepted)
    doc = item.document
    assert item.location == f"{tmp_path / 'site'}/2026 news/story.htm:1"
    assert doc.doc_id == "2026-news/story.htm"
    assert doc.title == "story.htm"
    assert doc.source == "file"
    assert doc.doc_type == "other"
    assert doc.published_at == datetime.fromtimestamp(1_790_000_000, UTC)
    assert doc.version == 1_790_000_000_000
    assert doc.url is None


def test_html_over_the_limit_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "big.html"
    path.write_text("<html><title>t</title>" + "x" * LIMIT + "</html>", encoding="utf-8")
    (rejection,) = read(path)
    assert isinstance(rejection, Rejection)
    assert rejection.error_class == "TooLargeError"
    assert rejection.location == f"{path}:1"


def test_html_with_invalid_utf8_reports_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.html"
    path.write_bytes(b"<html>\n<title>ok</title>\n<p>caf\xe9</p></html>")
    (rejection,) = read(path)
    assert isinstance(rejection, Rejection)
    assert rejection.location == f"{path}:3"
    assert rejection.error_class == "DecodeError"


# --- paths ------------------------------------------------------------------------------------


def test_directories_are_walked_recursively_in_order_skipping_hidden_and_unknown(
    tmp_path: Path,
) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / ".hidden").mkdir()
    write_lines(tmp_path / "b" / "two.jsonl", [json.dumps(raw("two")).encode()])
    write_lines(tmp_path / "a.jsonl", [json.dumps(raw("one")).encode()])
    write_lines(tmp_path / ".hidden" / "x.jsonl", [json.dumps(raw("hidden")).encode()])
    write_lines(tmp_path / ".dot.jsonl", [json.dumps(raw("dot")).encode()])
    (tmp_path / "notes.txt").write_text("ignored", encoding="utf-8")
    results = read(tmp_path)
    assert [r.document.doc_id for r in accepted(results)] == ["one", "two"]
    assert not rejected(results)


def test_unusable_paths_are_rejected_and_others_still_read(tmp_path: Path) -> None:
    good = write_lines(tmp_path / "good.jsonl", [json.dumps(raw("ok")).encode()])
    missing = tmp_path / "missing.jsonl"
    text = tmp_path / "notes.txt"
    text.write_text("x", encoding="utf-8")
    empty = tmp_path / "empty"
    empty.mkdir()
    results = read(missing, text, empty, good)
    assert [r.document.doc_id for r in accepted(results)] == ["ok"]
    got = {r.location: r.reason for r in rejected(results)}
    assert got == {
        f"{missing}:0": "No such file or directory",
        f"{text}:0": "unsupported file type '.txt'; expected "
        ".jsonl, .ndjson, .csv, .xml, .rss, .atom, .html, .htm",
        f"{empty}:0": "directory has no files of a supported type "
        "(.jsonl, .ndjson, .csv, .xml, .rss, .atom, .html, .htm)",
    }


def test_an_unreadable_file_in_a_directory_is_rejected(tmp_path: Path) -> None:
    write_lines(tmp_path / "a.jsonl", [json.dumps(raw("ok")).encode()])
    (tmp_path / "broken.jsonl").symlink_to(tmp_path / "nowhere.jsonl")
    results = read(tmp_path)
    assert [r.document.doc_id for r in accepted(results)] == ["ok"]
    (rejection,) = rejected(results)
    assert rejection.location == f"{tmp_path}/broken.jsonl:0"
    assert rejection.reason == "No such file or directory"
    assert rejection.error_class == "FileNotFoundError"


@pytest.mark.parametrize("name", ["x.jsonl", "x.csv", "x.rss", "x.html"])
def test_permission_denied_is_a_rejection(
    tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / name
    path.write_text("", encoding="utf-8")

    def deny(self: Path, *args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", deny)
    monkeypatch.setattr(Path, "open", deny)
    (rejection,) = read(path)
    assert isinstance(rejection, Rejection)
    assert rejection.location == f"{path}:0"
    assert rejection.reason == "Permission denied"
    assert rejection.error_class == "PermissionError"


def test_discover_keeps_argument_order(tmp_path: Path) -> None:
    b = write_lines(tmp_path / "b.jsonl", [b"{}"])
    a = write_lines(tmp_path / "a.jsonl", [b"{}"])
    assert [s.path for s in discover([b, a]) if not isinstance(s, Rejection)] == [b, a]


def test_check_document_raises_typed_errors() -> None:
    with pytest.raises(ValidationError):
        check_document(raw(op="merge"), max_body_bytes=LIMIT)
    with pytest.raises(TooLargeError):
        check_document(raw(body="x" * 11), max_body_bytes=10)
    assert check_document(raw(), max_body_bytes=LIMIT).doc_id == "doc-1"


# --- the shipped sample feed ------------------------------------------------------------------


def test_the_sample_feed_reads_without_rejections() -> None:
    results = read(SAMPLE, limit=2 * 1024 * 1024)
    assert not rejected(results), [str(r) for r in rejected(results)]
    docs = [r.document for r in accepted(results)]
    kinds = Counter((d.op, d.doc_type) for d in docs)
    assert kinds[("upsert", "news")] == 58  # 50 in news.jsonl + 8 RSS items
    assert kinds[("upsert", "filing")] == 6
    assert kinds[("upsert", "market_stats")] == 21
    assert kinds[("delete", None)] == 1
    tickers = {t for d in docs for t in d.tickers}
    assert {"AAPL", "MSFT", "NVDA", "JPM", "XOM", "TSLA", "AMZN"} <= tickers
    bodies = [d.body or "" for d in docs]
    assert any("@" in b and "555" in b for b in bodies)  # press contacts, for redaction
    assert sum(len(b.split()) >= 100 for b in bodies) >= 8
