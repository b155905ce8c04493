"""Tests for retrieval.loaders, on real files of every supported type made in ``tmp_path``."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import docx
import pytest
from fpdf import FPDF
from pypdf import PdfReader, PdfWriter

from agents.errors import (
    DocQAError,
    EmptyDocumentError,
    InputError,
    UnreadableFileError,
    UnsupportedFileError,
)
from retrieval.documents import SUPPORTED_SUFFIXES, Document, PageSpan
from retrieval.loaders import load_bytes, load_document, load_documents

PAGE_SENTENCES = (
    "The first page talks about apples.",
    "The second page talks about bananas.",
    "The third page talks about cherries.",
)


def make_pdf(sentences: tuple[str, ...] = PAGE_SENTENCES) -> bytes:
    """A PDF with one page per sentence ("" gives a page without text)."""
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for sentence in sentences:
        pdf.add_page()
        if sentence:
            pdf.cell(text=sentence)
    return bytes(pdf.output())


def encrypt_pdf(data: bytes, user_password: str, algorithm: str | None = None) -> bytes:
    """``data`` re-written encrypted with ``user_password`` (RC4 unless ``algorithm`` is given)."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm=algorithm)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def make_docx() -> bytes:
    """A DOCX with two paragraphs around a 2x2 table whose first row is one merged cell."""
    document = docx.Document()
    document.add_paragraph("Quarterly report for the orchard.")
    table = document.add_table(rows=3, cols=2)
    table.cell(0, 0).merge(table.cell(0, 1)).text = "Fruit sales"
    table.cell(1, 0).text = "Apples"
    table.cell(1, 1).text = "120 crates"
    table.cell(2, 0).text = "Pears"
    table.cell(2, 1).text = "45 crates"
    document.add_paragraph("Sales rose in the autumn.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


HTML = """<!DOCTYPE html>
<html><head><title>Orchard news</title>
<style>body { color: red; }</style>
<script>var secret = "SCRIPT_CONTENT_MUST_NOT_APPEAR";</script></head>
<body><h1>Harvest</h1>


<p>The harvest was early this year.</p>
<noscript>NOSCRIPT_CONTENT</noscript><template>TEMPLATE_CONTENT</template>
<p>Cider production doubled.</p></body></html>
"""


def write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    """Write ``data`` to ``tmp_path / name`` and return the path."""
    path = tmp_path / name
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8", newline="")
    else:
        path.write_bytes(data)
    return path


def assert_fails(error_type: type[DocQAError], path: Path, **kwargs: int) -> DocQAError:
    """``load_document(path)`` raises ``error_type`` whose message names the file and which has help."""
    with pytest.raises(error_type) as info:
        load_document(path, **kwargs)
    assert path.name in info.value.message
    assert info.value.help
    return info.value


# -- formats ---------------------------------------------------------------------------------------


def test_txt_is_normalised_lightly(tmp_path: Path) -> None:
    path = write(tmp_path, "notes.txt", "\ufeffFirst line.   \r\nSecond line.\t\r\n\r\n  Indented stays.\n")
    doc = load_document(path)
    assert doc.text == "First line.\nSecond line.\n\n  Indented stays.\n"
    assert doc.pages == ()
    assert doc.source == "notes.txt"
    assert doc.path == str(path)


def test_markdown_and_accepts_pathlike_and_str(tmp_path: Path) -> None:
    path = write(tmp_path, "readme.md", "# Title\n\nSome *markdown* text about pears.\n")
    doc = load_document(str(path))
    assert "Some *markdown* text about pears." in doc.text
    assert (doc.source, doc.path) == ("readme.md", str(path))
    assert load_document(write(tmp_path, "other.markdown", "Plums.")).text == "Plums."


def test_pdf_text_and_page_spans(tmp_path: Path) -> None:
    path = write(tmp_path, "report.pdf", make_pdf())
    doc = load_document(path)
    assert (doc.source, doc.path) == ("report.pdf", str(path))
    assert [span.page for span in doc.pages] == [1, 2, 3]
    for span, sentence in zip(doc.pages, PAGE_SENTENCES, strict=True):
        assert sentence in doc.text[span.start : span.end]
        for other in PAGE_SENTENCES:
            if other != sentence:
                assert other not in doc.text[span.start : span.end]
    assert doc.text == "\n\n".join(doc.text[s.start : s.end] for s in doc.pages)
    assert doc.pages[-1].end == len(doc.text)
    assert doc.pages_between(doc.pages[1].start, doc.pages[1].end) == (2, 2)


def test_pdf_page_without_text_gets_empty_span(tmp_path: Path) -> None:
    doc = load_document(write(tmp_path, "gap.pdf", make_pdf(("Before the gap.", "", "After the gap."))))
    assert [span.page for span in doc.pages] == [1, 2, 3]
    assert doc.pages[1].start == doc.pages[1].end
    assert "Before the gap." in doc.text[doc.pages[0].start : doc.pages[0].end]
    assert "After the gap." in doc.text[doc.pages[2].start : doc.pages[2].end]


@pytest.mark.parametrize("algorithm", [None, "AES-256"])
def test_pdf_with_empty_user_password_loads(tmp_path: Path, algorithm: str | None) -> None:
    path = write(tmp_path, "locked-open.pdf", encrypt_pdf(make_pdf(), "", algorithm))
    assert PdfReader(path).is_encrypted
    doc = load_document(path)
    assert len(doc.pages) == 3
    assert PAGE_SENTENCES[1] in doc.text[doc.pages[1].start : doc.pages[1].end]


def test_docx_paragraphs_and_table_in_order(tmp_path: Path) -> None:
    path = write(tmp_path, "orchard.docx", make_docx())
    doc = load_document(path)
    assert (doc.source, doc.path, doc.pages) == ("orchard.docx", str(path), ())
    lines = doc.text.split("\n")
    assert lines[0] == "Quarterly report for the orchard."
    assert lines[-1] == "Sales rose in the autumn."
    assert "Apples\t120 crates" in lines
    assert "Pears\t45 crates" in lines
    assert doc.text.count("Fruit sales") == 1  # a merged cell is read once


def test_html_drops_scripts_keeps_title(tmp_path: Path) -> None:
    path = write(tmp_path, "news.html", HTML)
    doc = load_document(path)
    assert "Orchard news" in doc.text
    assert "The harvest was early this year." in doc.text
    assert "Cider production doubled." in doc.text
    for hidden in ("SCRIPT_CONTENT", "NOSCRIPT_CONTENT", "TEMPLATE_CONTENT", "color: red"):
        assert hidden not in doc.text
    assert "\n\n\n" not in doc.text
    assert doc.text == doc.text.strip()
    assert load_document(write(tmp_path, "short.htm", "<p>Short page.</p>")).text == "Short page."


def test_load_documents_keeps_order_and_propagates(tmp_path: Path) -> None:
    a = write(tmp_path, "a.txt", "Alpha.")
    b = write(tmp_path, "b.md", "Beta.")
    docs = load_documents([b, a])
    assert [d.source for d in docs] == ["b.md", "a.txt"]
    assert all(isinstance(d, Document) for d in docs)
    with pytest.raises(UnreadableFileError):
        load_documents([a, tmp_path / "missing.txt"])


# -- bad inputs ------------------------------------------------------------------------------------


def test_unsupported_extension_lists_types(tmp_path: Path) -> None:
    error = assert_fails(UnsupportedFileError, write(tmp_path, "table.xlsx", b"PK\x03\x04"))
    assert all(suffix in error.help for suffix in SUPPORTED_SUFFIXES)
    assert_fails(UnsupportedFileError, write(tmp_path, "noextension", "text"))


def test_missing_file_and_directory(tmp_path: Path) -> None:
    assert_fails(UnreadableFileError, tmp_path / "nowhere.txt")
    folder = tmp_path / "folder.txt"
    folder.mkdir()
    assert_fails(UnreadableFileError, folder)


def test_text_passed_as_a_path_gets_a_typed_error_not_an_oserror() -> None:
    with pytest.raises(UnreadableFileError) as info:
        load_document("The report says little. " * 400)
    error = info.value
    assert "not a usable file path" in error.message and "(9,600 characters)" in error.message
    assert "Document(" in error.help


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "secret.txt", "hidden")

    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refuse)
    error = assert_fails(UnreadableFileError, path)
    assert "Permission denied" in error.message


def test_corrupt_pdf(tmp_path: Path) -> None:
    error = assert_fails(UnreadableFileError, write(tmp_path, "broken.pdf", os.urandom(4096)))
    assert "not a valid PDF" in error.message
    truncated = make_pdf()[:200]
    assert_fails(UnreadableFileError, write(tmp_path, "truncated.pdf", truncated))


def test_encrypted_pdf(tmp_path: Path) -> None:
    error = assert_fails(UnreadableFileError, write(tmp_path, "locked.pdf", encrypt_pdf(make_pdf(), "secret")))
    assert "encrypted PDF" in error.message
    assert "qpdf" in error.help


def test_pdf_without_text(tmp_path: Path) -> None:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    error = assert_fails(EmptyDocumentError, write(tmp_path, "scan.pdf", out.getvalue()))
    assert "ocrmypdf" in error.help


def test_corrupt_docx(tmp_path: Path) -> None:
    assert_fails(UnreadableFileError, write(tmp_path, "broken.docx", os.urandom(2048)))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("hello.txt", "not a word document")
    assert_fails(UnreadableFileError, write(tmp_path, "plainzip.docx", archive.getvalue()))


@pytest.mark.parametrize("content", ["", "   \n\t\r\n  \n"])
def test_empty_or_whitespace_txt(tmp_path: Path, content: str) -> None:
    assert_fails(EmptyDocumentError, write(tmp_path, "blank.txt", content))


def test_html_with_only_script_is_empty(tmp_path: Path) -> None:
    assert_fails(EmptyDocumentError, write(tmp_path, "app.html", "<html><script>run()</script></html>"))


@pytest.mark.parametrize("data", [b"\xff\xfe\x00\x01binary\x80\x81", b"valid utf-8 but \x00 NUL"])
def test_binary_named_txt(tmp_path: Path, data: bytes) -> None:
    error = assert_fails(UnreadableFileError, write(tmp_path, "data.txt", data))
    assert "UTF-8" in error.message


def test_max_bytes(tmp_path: Path) -> None:
    path = write(tmp_path, "big.txt", "x" * 2000)
    error = assert_fails(InputError, path, max_bytes=1000)
    assert type(error) is InputError
    assert "2,000" in error.message and "1,000" in error.message
    assert load_document(path, max_bytes=2000).text == "x" * 2000


# -- load_bytes ------------------------------------------------------------------------------------


def test_load_bytes_text_and_provenance() -> None:
    doc = load_bytes("upload.txt", "\ufeffUploaded text.\r\n".encode())
    assert (doc.source, doc.path, doc.text) == ("upload.txt", None, "Uploaded text.\n")


def test_load_bytes_rejects_pdf_named_txt() -> None:
    with pytest.raises(UnsupportedFileError) as info:
        load_bytes("notes.txt", make_pdf())
    assert "notes.txt" in info.value.message
    assert info.value.help


def test_load_bytes_detects_docx_by_content() -> None:
    data = make_docx()
    for name in ("orchard.docx", "orchard"):
        doc = load_bytes(name, data)
        assert "Apples\t120 crates" in doc.text
        assert doc.source == name
    with pytest.raises(UnsupportedFileError, match="orchard.pdf"):
        load_bytes("orchard.pdf", data)


def test_load_bytes_detects_html_by_content() -> None:
    for data in (HTML.encode(), b"\xef\xbb\xbf  \n<HTML><body><p>Upper case.</p></body></HTML>"):
        doc = load_bytes("page", data)
        assert "SCRIPT_CONTENT" not in doc.text and "<" not in doc.text
    assert "Cider production doubled." in load_bytes("page.htm", HTML.encode()).text
    with pytest.raises(UnsupportedFileError, match="page.docx"):
        load_bytes("page.docx", HTML.encode())
    assert load_bytes("fragment.html", b"<p>A fragment.</p>").text == "A fragment."  # HTML, not <html>
    assert load_bytes("source.txt", HTML.encode()).text.startswith("<!DOCTYPE html>")


def test_load_bytes_pdf_and_errors() -> None:
    doc = load_bytes("report.pdf", make_pdf())
    assert doc.pages == tuple(doc.pages) and isinstance(doc.pages[0], PageSpan)
    assert len(doc.pages) == 3 and doc.path is None
    with pytest.raises(UnsupportedFileError, match="blob.bin"):
        load_bytes("blob.bin", b"plain text")
    with pytest.raises(UnsupportedFileError, match="random.txt"):
        load_bytes("random.txt", b"\x89\xff\x00\x13" * 64)
    with pytest.raises(UnreadableFileError, match="locked.pdf"):
        load_bytes("locked.pdf", encrypt_pdf(make_pdf(), "secret"))
    with pytest.raises(EmptyDocumentError, match="empty.md"):
        load_bytes("empty.md", b"   \n")
