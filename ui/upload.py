"""Uploads: check each file (type, content, size), store it under <data dir>/uploads/, ingest that folder."""

from __future__ import annotations

import hashlib
import re
import shutil
import unicodedata
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rag.config import Settings

ALLOWED = (".pdf", ".txt", ".docx", ".html", ".htm", ".md")
MAX_NAME = 80


@dataclass(frozen=True)
class Rejected:
    """An upload refused before ingest; shaped like ingest's FileResult for the report table."""

    path: str
    error: str
    title: str | None = None
    status: str = "rejected"
    clauses: int = 0


def uploads_dir(settings: Settings) -> Path:
    """Where uploads live. Never delete from it: ingesting the folder drops documents whose file is gone."""
    return Path(settings.data_dir) / "uploads"


def safe_name(name: str) -> str:
    """A file name without folders, hidden-file dots or odd characters: ../../x.txt → x.txt."""
    name = unicodedata.normalize("NFC", name.replace("\\", "/").rsplit("/", 1)[-1])
    name = re.sub(r"[^\w\u3000-\u303f\uff00-\uffef.（）()《》—\-]", "_", name).lstrip("._-")
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    stem = stem[: MAX_NAME - len(suffix) - 1].strip("._") or "upload"
    return f"{stem}.{suffix.lower()}" if suffix else stem


def check(name: str, data: bytes, max_mb: float) -> str | None:
    """Why this upload cannot be a policy document, or None when it looks fine."""
    suffix = Path(name).suffix.lower()
    if suffix not in ALLOWED:
        return f"不支持的文件类型 {suffix or '（无扩展名）'}：请上传 .pdf .txt .docx .html .md 文件"
    if len(data) > max_mb * 1024 * 1024:
        return f"文件大小 {len(data) / 1024 / 1024:.1f} MB，超过上限 {max_mb:g} MB"
    if not data.strip():
        return "文件是空的"
    if suffix == ".pdf" and data.lstrip()[:5] != b"%PDF-":
        return "扩展名是 .pdf，但内容不是 PDF 文件"
    if suffix == ".docx":
        return _check_docx(data)
    if suffix != ".pdf" and not _reads_as_text(data):
        return f"扩展名是 {suffix}，但内容是二进制数据，不是文本"
    return None


def _reads_as_text(data: bytes) -> bool:
    """The same decoder ingest uses decides (UTF-16 text has NUL bytes and is still text)."""
    from ingest.encoding import decode_text
    from rag.errors import DocumentReadError

    try:
        decode_text(data, "upload")
    except DocumentReadError:
        return False
    return True


def _check_docx(data: bytes) -> str | None:
    import io

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            if "word/document.xml" in z.namelist():
                return None
    except zipfile.BadZipFile:
        pass
    return "扩展名是 .docx，但内容不是 Word（.docx）文件（旧版 .doc 请先另存为 .docx）"


def store(settings: Settings, files: Sequence[Path | str]) -> tuple[list[Path], list[Rejected]]:
    """Copy acceptable uploads into the uploads folder under safe, non-clashing names."""
    folder = uploads_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    stored: list[Path] = []
    rejected: list[Rejected] = []
    for file in files:
        file = Path(file)
        name = safe_name(file.name)
        data = file.read_bytes()
        problem = check(name, data, settings.max_file_mb)
        if problem:
            rejected.append(Rejected(name, problem))
            continue
        target = _free_path(folder, name, data)
        if not target.exists():
            shutil.copyfile(file, target)
        stored.append(target)
    return stored, rejected


def _free_path(folder: Path, name: str, data: bytes) -> Path:
    """`name` in `folder`, or name-2, name-3 … when another file with different content has it."""
    digest = hashlib.sha256(data).digest()
    stem, suffix = Path(name).stem, Path(name).suffix
    n = 1
    while True:
        target = folder / (name if n == 1 else f"{stem}-{n}{suffix}")
        if not target.exists() or hashlib.sha256(target.read_bytes()).digest() == digest:
            return target
        n += 1


def ingest_uploads(settings: Settings, files: Sequence[Path | str], embedder=None,
                   progress: Callable[[int, int], None] | None = None,
                   pages: Callable[[str, int, int], None] | None = None) -> list:
    """Store and ingest uploads; one result row per uploaded file (ingest's FileResult or Rejected)."""
    from ingest.build import ingest

    stored, rejected = store(settings, files)
    rows: list = list(rejected)
    if stored:
        report = ingest(settings, [uploads_dir(settings)], embedder=embedder, progress=progress, pages=pages)
        names = {p.name for p in stored}
        rows += [r for r in report.documents if Path(r.path).name in names]
        for row in rows:  # a file that failed is not kept: it would fail again in every later upload's ingest
            if row.status == "failed" and Path(row.path).name in names:
                (uploads_dir(settings) / Path(row.path).name).unlink(missing_ok=True)
    return rows
