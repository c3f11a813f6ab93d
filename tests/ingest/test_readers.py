import json

import pytest

from sage_platform.ingest import Rejected, read_document
from sage_platform.ingest.html import html_to_text
from tests.pdf import make_pdf


def test_html_keeps_text_and_drops_scripts_and_styles() -> None:
    title, text = html_to_text(
        "<html><head><title>The  Title</title><style>p{color:red}</style></head>"
        "<body><script>alert('x')</script><h1>Heading</h1><p>First &amp; second.</p>"
        "<noscript>enable js</noscript><ul><li>one</li><li>two</li></ul></body></html>"
    )
    assert title == "The Title"
    assert text == "Heading\n\nFirst & second.\n\none\n\ntwo"
    assert "alert" not in text and "color" not in text and "enable js" not in text


def test_html_declared_charset_is_honoured() -> None:
    data = '<meta charset="iso-8859-1"><p>caf\u00e9</p>'.encode("latin-1")
    assert read_document("a.html", data).documents[0].text == "caf\u00e9"


def test_markdown_title_is_its_first_heading() -> None:
    document = read_document("guide/intro.md", b"# Intro\n\nBody text.").documents[0]
    assert (document.doc_id, document.title, document.text) == (
        "guide/intro.md",
        "Intro",
        "# Intro\n\nBody text.",
    )


def test_pdf_text_is_extracted() -> None:
    document = read_document("paper.pdf", make_pdf("Hello from a PDF page")).documents[0]
    assert "Hello from a PDF page" in document.text


def test_jsonl_records_are_documents_and_bad_lines_are_rejected_alone() -> None:
    lines = [
        json.dumps({"id": "a", "text": "Alpha text", "title": "A", "metadata": {"lang": "en"}}),
        "{not json",
        json.dumps({"id": "b"}),
        json.dumps({"id": 7, "text": "Seven"}),
        json.dumps({"id": "a", "text": "again"}),
    ]
    result = read_document("records.jsonl", "\n".join(lines).encode())
    assert [(d.doc_id, d.title, d.metadata) for d in result.documents] == [
        ("a", "A", {"lang": "en"}),
        ("7", None, {}),
    ]
    reasons = dict(result.rejected_records)
    assert "invalid JSON" in reasons["records.jsonl:2"]
    assert "missing or empty 'text'" in reasons["records.jsonl:3"]
    assert "duplicate id 'a'" in reasons["records.jsonl:5"]


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("empty.txt", b"  \n ", "empty file"),
        ("binary.txt", b"abc\x00\x01\x02", "binary content"),
        ("latin.md", "caf\u00e9".encode("latin-1"), "not valid UTF-8 at byte 3"),
        ("bad.json", b'{"id": 1,', "invalid JSON at line 1"),
        ("broken.pdf", b"%PDF-1.4 garbage", "unreadable PDF"),
        ("only-tags.html", b"<script>x()</script><style>a{}</style>", "no text"),
    ],
)
def test_bad_files_are_rejected_with_a_reason(name: str, data: bytes, reason: str) -> None:
    with pytest.raises(Rejected, match=reason):
        read_document(name, data)
