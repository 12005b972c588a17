"""OCR benchmark: image-only versions of real documents (pages rendered, turned ±1°, noised, a red round stamp
pressed on), read back through the ingest's PDF loader, scored against the text version.

- character accuracy: 1 − edit distance / length of the text version, whitespace removed, per document and overall
  (both sides cleaned by ingest.clean, so what cleaning normalises — full-width letters and digits, ASCII
  punctuation next to CJK, furniture lines — is compared normalised; a table is compared as flat lines on both);
- clause-label accuracy: the share of the text version's clause labels (一、（一）1. 第X条) that the OCR'd version has;
- seconds per page of OCR.

Sources: PDFs of ../shared/corpus-ext/pdf (their text layer is the reference; a sample of pages, since OCR takes
seconds a page) and the seed documents of corpus/ (typeset onto A4 pages with a CJK font, the title in red as a
红头 line). `policy-rag eval --ocr` runs it.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

REPO = Path(__file__).resolve().parents[1]
PDF_DIR = REPO.parent / "shared" / "corpus-ext" / "pdf"
SEED_DIR = REPO / "corpus"
FONT = Path("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc")
STAMP_TEXT = "政策文件专用章"
# real PDFs with clause structure, and the pages sampled from each (1-based)
PDF_PAGES = {
    "GovDoc-CN_397.pdf": (1, 2, 3),
    "上海市居住证管理办法.pdf": (1, 3),
    "国家文物局关于印发《革命文物保护利用“十四五”专项规划》的通知.pdf": (1, 2),
    "居住证暂行条例（国务院令第663号） _行政法规_中国政府网.pdf": (1, 2),
    "道路交通安全法.pdf": (2, 3),
    "省文化和旅游厅关于印发《湖北省文物事业发展“十四五”规划》的通知.pdf": (9, 10),
}
SEED_PAGES = 2  # typeset pages per seed document


@dataclass
class DocScore:
    name: str
    pages: int
    chars: int
    char_accuracy: float
    labels: int
    labels_found: int
    ocr_seconds: float


def stamp(size: int, font_path: Path | None) -> "Image.Image":
    """A red round seal: a ring, a star and text round the top, on a transparent ground."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    red = (220, 30, 30, 230)
    draw.ellipse((4, 4, size - 4, size - 4), outline=red, width=max(size // 40, 3))
    c, r = size / 2, size * 0.12
    draw.regular_polygon((c, c, r), 5, fill=red)
    if font_path:
        font = ImageFont.truetype(str(font_path), size // 9)
        for i, ch in enumerate(STAMP_TEXT):
            angle = -150 + i * 120 / max(len(STAMP_TEXT) - 1, 1)
            glyph = Image.new("RGBA", (size // 8, size // 8), (0, 0, 0, 0))
            ImageDraw.Draw(glyph).text((0, 0), ch, font=font, fill=red)
            glyph = glyph.rotate(-angle - 90, expand=True)
            x = c + (size * 0.36) * math.cos(math.radians(angle)) - glyph.width / 2
            y = c + (size * 0.36) * math.sin(math.radians(angle)) - glyph.height / 2
            image.alpha_composite(glyph, (int(x), int(y)))
    return image


def scan(page: "Image.Image", rng: random.Random, with_stamp: bool) -> "Image.Image":
    """What a scanner makes of a printed page: turned by up to ±1°, grey noise, and a red seal pressed on the text."""
    import numpy as np
    from PIL import Image

    page = page.convert("RGB")
    if with_stamp:
        seal = stamp(int(page.width * 0.28), FONT if FONT.exists() else None)
        x, y = int(page.width * 0.55), int(page.height * rng.uniform(0.25, 0.6))
        base = np.asarray(page).astype(np.float32)
        ink = np.asarray(seal).astype(np.float32)
        alpha = ink[..., 3:4] / 255
        region = base[y : y + seal.height, x : x + seal.width]
        # ink multiplies with the paper: black text under the seal stays black
        region[:] = region * (1 - alpha) + region * (ink[..., :3] / 255) * alpha
        page = Image.fromarray(base.clip(0, 255).astype(np.uint8))
    page = page.rotate(rng.uniform(-1, 1), resample=Image.BICUBIC, fillcolor=(255, 255, 255))
    pixels = np.asarray(page).astype(np.int16) + np.random.default_rng(rng.randrange(1 << 30)).normal(0, 12, (page.height, page.width, 1)).astype(np.int16)
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8))


def image_pdf(images: list["Image.Image"], path: Path) -> Path:
    """The images as a PDF of pictures only; fails if any text layer is left."""
    from pypdf import PdfReader

    images[0].save(path, "PDF", save_all=True, append_images=images[1:], resolution=144)
    leftover = [page.extract_text() or "" for page in PdfReader(path).pages]
    if any(text.strip() for text in leftover):
        raise AssertionError(f"{path.name}: a text layer is left")
    return path


def text_pdf_pages(source: Path, pages: tuple[int, ...], out: Path) -> tuple[Path, list["Image.Image"]]:
    """The chosen pages of a real PDF (text layer kept) and their renders at 144 dpi without the PDF's pictures:
    text inside a picture (a 专栏 box printed as an image) is not in the text layer, so it has no reference."""
    import io

    import pypdfium2
    from pypdf import PdfReader, PdfWriter

    reader, writer = PdfReader(source), PdfWriter()
    chosen = [p for p in pages if p <= len(reader.pages)]
    for p in chosen:
        writer.add_page(reader.pages[p - 1])
    writer.write(out)
    writer.remove_images()
    without_pictures = io.BytesIO()
    writer.write(without_pictures)
    document = pypdfium2.PdfDocument(without_pictures.getvalue())
    images = [document[k].render(scale=2).to_pil() for k in range(len(chosen))]
    return out, images


def typeset(text: str, pages: int) -> tuple[str, list["Image.Image"]]:
    """The first `pages` A4 pages of `text` (33 characters a line, 144 dpi), the title in red; the text set.
    The title is split from a preamble sharing its line (as cleaning does) and wrapped like the body."""
    from PIL import Image, ImageDraw, ImageFont

    from ingest.clean import split_title_line

    font = ImageFont.truetype(str(FONT), 28)
    title_font = ImageFont.truetype(str(FONT), 40)
    width, height, margin, step, per_line, per_title_line = 1190, 1684, 130, 44, 33, 22
    lines: list[tuple[str, bool]] = []
    paragraphs = [p for p in split_title_line(text).split("\n") if p.strip()]
    for i, paragraph in enumerate(paragraphs):
        if i == 0:
            title = paragraph.strip()
            lines += [(title[k : k + per_title_line], True) for k in range(0, len(title), per_title_line)]
            continue
        body = "　　" + paragraph
        lines += [(body[k : k + per_line], False) for k in range(0, len(body), per_line)]
    images, set_lines = [], []
    rows = (height - 2 * margin) // step
    for n in range(pages):
        page = Image.new("RGB", (width, height), "white")
        draw = ImageDraw.Draw(page)
        y = margin
        for line, is_title in lines[n * rows : (n + 1) * rows]:
            if is_title:
                w = draw.textlength(line, font=title_font)
                draw.text(((width - w) / 2, y), line, font=title_font, fill=(210, 20, 20))
            else:
                draw.text((margin, y), line, font=font, fill="black")
            set_lines.append(line)
            y += step
        draw.text((width / 2 - 20, height - 80), f"- {n + 1} -", font=font, fill="black")
        images.append(page)
    # the reference: the set lines re-joined into paragraphs as the source had them
    reference = "\n".join(set_lines).replace("\n　　", "\n\u2029").replace("\n", "").replace("\u2029", "\n")
    return reference.replace("　　", ""), images


def _accuracy(reference: str, hypothesis: str) -> float:
    from rapidfuzz.distance import Levenshtein

    ref, hyp = "".join(reference.split()), "".join(hypothesis.split())
    return 1 - Levenshtein.distance(ref, hyp) / max(len(ref), 1)


def _score(name: str, reference_file: Path, scanned_file: Path, pages: int) -> DocScore:
    from ingest.clauses import split_clauses
    from ingest.loaders import OcrOptions, load_documents

    reference = load_documents(reference_file, ocr=OcrOptions("off"))[0]
    start = time.perf_counter()
    read = load_documents(scanned_file, ocr=OcrOptions("auto"))[0]
    seconds = time.perf_counter() - start
    want = {c.label for c in split_clauses(reference) if c.label}
    got = {c.label for c in split_clauses(read) if c.label}
    flat = _text_layer(reference_file) if reference_file.suffix == ".pdf" else reference.text
    return DocScore(name, pages, len("".join(flat.split())), _accuracy(flat, read.text), len(want), len(want & got),
                    seconds)


def _text_layer(path: Path) -> str:
    """The PDF's text layer cleaned as ingest cleans it, tables left as the flat lines they are printed in: OCR
    reads a table line by line, so comparing it with header-keyed rows (「指标：…；2025年：…」) would count the
    repeated headers as errors. Clause labels are still compared with the document as ingest loads it."""
    from pypdf import PdfReader

    from ingest.clean import clean_pages

    return clean_pages([page.extract_text() or "" for page in PdfReader(path).pages])[0]


def run(work: Path, progress: Callable[[str], None] = print, seed: int = 26) -> list[DocScore]:
    """Build the image-only documents in `work`, OCR them, and score each."""
    rng = random.Random(seed)
    scores = []
    for i, (name, pages) in enumerate(PDF_PAGES.items()):
        source = PDF_DIR / name
        if not source.exists():
            continue
        text_file, images = text_pdf_pages(source, pages, work / f"pdf{i}-text.pdf")
        scanned = image_pdf([scan(im, rng, with_stamp=(k == 0)) for k, im in enumerate(images)], work / f"pdf{i}-scan.pdf")
        _add(scores, progress, name, text_file, scanned, len(images))
    if FONT.exists():
        for i, seed_file in enumerate(sorted(SEED_DIR.glob("*.txt"))):
            reference, images = typeset(seed_file.read_text(encoding="utf-8"), SEED_PAGES)
            text_file = work / f"seed{i}.txt"
            text_file.write_text(reference, encoding="utf-8")
            scanned = image_pdf([scan(im, rng, with_stamp=True) for im in images], work / f"seed{i}-scan.pdf")
            _add(scores, progress, seed_file.name, text_file, scanned, len(images))
    return scores


def _add(scores: list[DocScore], progress: Callable[[str], None], name: str, text_file: Path, scanned: Path,
         pages: int) -> None:
    """Score one document; one that cannot be read is reported and left out of the figures."""
    from rag.errors import DocumentReadError

    try:
        scores.append(_score(name, text_file, scanned, pages))
        progress(_line(scores[-1]))
    except DocumentReadError as error:
        progress(f"{name[:40]:40}  not scored: {error}")


def _line(s: DocScore) -> str:
    return (f"{s.name[:40]:40}  pages {s.pages}  chars {s.chars:5}  char acc {s.char_accuracy:.4f}  "
            f"labels {s.labels_found}/{s.labels}  {s.ocr_seconds / s.pages:.1f} s/page")


def summary(scores: list[DocScore]) -> dict[str, float]:
    """Overall figures: character accuracy weighted by length, label accuracy, OCR seconds a page."""
    chars = sum(s.chars for s in scores)
    labels = sum(s.labels for s in scores)
    pages = sum(s.pages for s in scores)
    return {
        "documents": len(scores),
        "pages": pages,
        "char_accuracy": round(sum(s.char_accuracy * s.chars for s in scores) / max(chars, 1), 4),
        "label_accuracy": round(sum(s.labels_found for s in scores) / max(labels, 1), 4),
        "labels": labels,
        "seconds_per_page": round(sum(s.ocr_seconds for s in scores) / max(pages, 1), 2),
    }


def main(progress: Callable[[str], None] = print) -> dict[str, float]:
    import tempfile

    with tempfile.TemporaryDirectory() as work:
        scores = run(Path(work), progress)
    result = summary(scores)
    progress(f"overall: {result}")
    return result


__all__ = ["run", "summary", "main", "scan", "stamp", "image_pdf", "typeset"]
