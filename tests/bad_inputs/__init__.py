"""The bad-input corpus: what staff folders hold, built at test time from real documents (nothing big committed).

`build(folder)` writes every case into `folder`; `CASES` says what ingest must make of each: a good file is
indexed, a bad one is one failed line naming the file and the reason, an unsupported one is skipped.
Build it by hand with `python -c "import pathlib, tests.bad_inputs as b; b.build(pathlib.Path('DIR'))"`.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "corpus"
PDFS = REPO.parent / "shared" / "corpus-ext" / "pdf"
REAL_PDF = PDFS / "GovDoc-CN_397.pdf"  # 发改办财金规〔2019〕860号, 5 pages, XeTeX
QCY = CORPUS / "秦创原创新驱动平台建设三年行动计划（2024—2026年）.txt"
SX = CORPUS / "关于加快构建山西省创新生态的指导意见.txt"
MB = 1024 * 1024


@dataclass(frozen=True)
class Case:
    """One file of the corpus: its name, what ingest makes of it, and words its message must contain."""

    name: str
    status: str                  # added | failed | skipped
    reason: tuple[str, ...] = ()  # in the error (after the file name) when failed or skipped
    upload: str | None = None    # status through the chat's upload, when it differs (rejected before ingest)
    upload_reason: tuple[str, ...] = ()


CASES = [
    Case("truncated.pdf", "failed", ("truncated",)),
    Case("password.pdf", "failed", ("password-protected",)),
    Case("scanned.pdf", "failed", ("no text layer", "OCR")),
    Case("empty.txt", "failed", ("empty file",), "rejected", ("空的",)),
    Case("zero-byte.docx", "failed", ("empty file",), "rejected", ("空的",)),
    Case("junk.txt", "failed", ("not text", "binary"), "rejected", ("二进制",)),
    Case("秦创原_GBK.txt", "added"),
    Case("山西_UTF-16.txt", "added"),
    Case("one-2MB-line.txt", "added"),
    Case("too-big.txt", "failed", ("over the 50 MB limit",), "rejected", ("超过上限 50 MB",)),
    Case("slides.pptx", "skipped", ("unsupported file type .pptx",), "rejected", ("不支持的文件类型 .pptx",)),
    Case("loop-a.txt", "failed", ("cannot read", "symbolic links")),
    Case("关于 印发 《实施意见》 的通知 (2019).pdf", "added"),
]


def build(folder: Path, *, loop: bool = True) -> Path:
    """Write every case into `folder` (created); `loop=False` leaves out the symlink loop (uploads)."""
    folder.mkdir(parents=True, exist_ok=True)
    real = REAL_PDF.read_bytes()
    (folder / "truncated.pdf").write_bytes(real[: len(real) // 3])
    (folder / "password.pdf").write_bytes(_encrypted(real, "s3cret"))
    (folder / "scanned.pdf").write_bytes(_image_only_pdf())
    (folder / "empty.txt").write_bytes(b"")
    (folder / "zero-byte.docx").write_bytes(b"")
    (folder / "junk.txt").write_bytes(bytes(range(256)) * 64 + os.urandom(4096))
    (folder / "秦创原_GBK.txt").write_bytes(QCY.read_text(encoding="utf-8").encode("gbk"))
    (folder / "山西_UTF-16.txt").write_bytes(SX.read_text(encoding="utf-8").encode("utf-16"))
    (folder / "one-2MB-line.txt").write_bytes(_one_long_line(2 * MB))
    with (folder / "too-big.txt").open("wb") as big:  # sparse: 51 MB on paper, nothing on disk
        big.truncate(51 * MB)
    (folder / "slides.pptx").write_bytes(b"PK\x03\x04 not a policy document")
    if loop:
        (folder / "loop-a.txt").symlink_to("loop-b.txt")
        (folder / "loop-b.txt").symlink_to("loop-a.txt")
    (folder / "关于 印发 《实施意见》 的通知 (2019).pdf").write_bytes(real)
    return folder


def _encrypted(pdf: bytes, password: str) -> bytes:
    """The real PDF behind a user password (RC4: pypdf writes it without the cryptography package)."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.encrypt(password, algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _image_only_pdf() -> bytes:
    """A scan: one page that is a picture of text lines, with no text layer."""
    from PIL import Image, ImageDraw

    page = Image.new("L", (620, 877), 255)
    draw = ImageDraw.Draw(page)
    for y in range(120, 760, 28):
        draw.rectangle((70, y, 70 + (y * 7919) % 420 + 60, y + 12), fill=40)
    out = io.BytesIO()
    page.save(out, format="PDF", resolution=75)
    return out.getvalue()


def _one_long_line(size: int) -> bytes:
    """A real sentence of the 秦创原 plan repeated into a single line of `size` bytes (no newline at all)."""
    text = QCY.read_text(encoding="utf-8")
    sentence = next(s for s in text.split("。") if "技术合同成交额" in s).strip() + "。"
    sentence = sentence.replace("\n", "")
    line = (sentence * (size // len(sentence.encode("utf-8")) + 1)).encode("utf-8")[:size]
    return line.decode("utf-8", errors="ignore").encode("utf-8")  # no half character at the cut


