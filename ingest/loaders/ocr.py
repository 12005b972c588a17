"""OCR of PDF pages without a text layer: pypdfium2 renders a page, RapidOCR reads it (PP-OCR Chinese models
shipped in its wheel, so nothing is downloaded), and the lines are put back in reading order.

Pages are read in one worker process, one page at a time, so that a page can be given a time limit: a page that
takes too long, or crashes the renderer (a corrupt image stream), costs that worker, not the ingest. The next page
starts a fresh one. The worker renders at most MAX_SIDE_PX per side and lives under a memory limit, so a huge or
hostile page cannot take the machine's memory; it ends by itself when the ingest that started it is gone.

Red ink is read apart from black: a stamp (盖章) printed over the body must neither hide the text under it nor
add its own words, while the red 红头 line at the top of a notice is part of the document. So the body is read
in its red channel alone, as a scanner's red dropout filter sees it: red ink is as light as the paper there, while
black text under a stamp keeps its strokes whole (whitening the red pixels cut them: anti-aliased stroke edges
turn red under the seal's ink). Only red regions shaped like a line of text (much wider than tall) are read as
text; a round stamp is not.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

OcrMode = Literal["auto", "off", "force"]
RENDER_SCALE = 2.0       # 144 dpi: body text (10.5-16 pt) is 20-30 px high, where PP-OCR reads best
MAX_SIDE_PX = 3400       # A3 still at 144 dpi; a larger page (a poster) is rendered smaller: memory stays bounded
DETECT_SIDE_PX = 2000    # lines are found on the page scaled to this (detection time grows with the pixels) …
                         # … and each line is read from the full-resolution page (recognition scales it anyway)
PAGE_SECONDS = 120.0     # default time limit per page (measured: 6-15 s a page on 2 shared cores)
WORKER_MEMORY_MB = 3072  # address-space limit of the OCR worker (models + one page need about 1 GB)
START_SECONDS = 60.0     # the worker's start-up (imports, models) is not counted against a page
MIN_TEXT_CHARS = 10      # a text layer with fewer letters, digits or ideographs than this is not a text layer
_MEANINGFUL = re.compile(r"[\u3400-\u9fffA-Za-z0-9]")
_GARBAGE = re.compile(r"[\ufffd\ue000-\uf8ff\x00-\x08\x0b\x0e-\x1f]")
_RED_MIN_PIXELS = 200


@dataclass(frozen=True, slots=True)
class OcrOptions:
    """How PDFs are read: `auto` OCRs pages without a usable text layer, `force` every page, `off` none."""

    mode: OcrMode = "auto"
    page_seconds: float = PAGE_SECONDS
    on_page: Callable[[int, int], None] | None = None  # (pages read, pages to read) as OCR goes


class PageError(Exception):
    """One page could not be read; the message says why (the page number is added by the caller)."""


def needs_ocr(text: str) -> bool:
    """A page whose text layer is empty or garbage (private-use glyphs, control characters, U+FFFD)."""
    meaningful = len(_MEANINGFUL.findall(text))
    return meaningful < MIN_TEXT_CHARS or len(_GARBAGE.findall(text)) > meaningful / 2


def page_ranges(pages: list[int]) -> str:
    """1-based page numbers as a compact string: [1, 2, 3, 5] → "1-3,5" (stored in the document's meta)."""
    runs: list[list[int]] = []
    for page in sorted(set(pages)):
        if runs and runs[-1][1] == page - 1:
            runs[-1][1] = page
        else:
            runs.append([page, page])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


# ---------------------------------------------------------------- reading order


@dataclass(frozen=True, slots=True)
class Box:
    """One recognised run of text and where it lies on the page (pixels)."""

    text: str
    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def height(self) -> float:
        return self.y1 - self.y0


def boxes_from(result: list | None, dx: float = 0, dy: float = 0) -> list[Box]:
    """RapidOCR's [[corners, text, score], …] as Boxes, shifted by (dx, dy) when read from a crop."""
    boxes = []
    for corners, text, _score in result or []:
        xs, ys = [p[0] for p in corners], [p[1] for p in corners]
        if text.strip():
            boxes.append(Box(text.strip(), min(xs) + dx, min(ys) + dy, max(xs) + dx, max(ys) + dy))
    return boxes


# PP-OCR's recogniser tends to read the wide gap after a bold article number as a 、: 「第四条、居住证登载…」
_GAP_READ_AS_COMMA = re.compile(r"^(第[一二三四五六七八九十百千零〇两\d]+[编章节条])、(?!第)")


def reading_order(boxes: list[Box]) -> list[str]:
    """Boxes grouped into lines (their vertical centres fall within one another's height), top to bottom, each
    line left to right; the pieces of a line are joined with a space (cleaning removes it between ideographs).
    A 、 read into the gap after a line-initial 第X条 becomes the space it is (第X条、第Y条 is left alone)."""
    lines: list[list[Box]] = []
    for box in sorted(boxes, key=lambda b: (b.y0 + b.y1) / 2):
        centre = (box.y0 + box.y1) / 2
        if lines:
            last = lines[-1]
            top, bottom = min(b.y0 for b in last), max(b.y1 for b in last)
            last_centre = (top + bottom) / 2
            if abs(centre - last_centre) < 0.5 * min(box.height, bottom - top):
                last.append(box)
                continue
        lines.append([box])
    texts = [" ".join(b.text for b in sorted(line, key=lambda b: b.x0)) for line in lines]
    return [_GAP_READ_AS_COMMA.sub(r"\1 ", text) for text in texts]


# ---------------------------------------------------------------- one page (runs in the worker)


def red_mask(rgb: Any) -> Any:
    """Pixels of red ink (seal red, 红头 red): red well above green and blue."""
    import numpy as np

    r, g, b = (rgb[..., i].astype(np.int16) for i in range(3))
    return (r > 120) & (r - g > 50) & (r - b > 50)


def red_text_regions(mask: Any) -> list[tuple[int, int, int, int]]:
    """(x, y, w, h) of red regions shaped like a line of text: far wider than tall and taller than a rule line;
    a round stamp (as wide as tall) is not one."""
    import cv2
    import numpy as np

    if int(mask.sum()) < _RED_MIN_PIXELS:
        return []
    merged = cv2.dilate(mask.astype(np.uint8), np.ones((9, 31), np.uint8))  # characters of a line into one region
    count, _labels, stats, _centroids = cv2.connectedComponentsWithStats(merged)
    regions = []
    for x, y, w, h, _area in stats[1:count]:
        if w >= 3 * h and 20 <= h <= 400:
            regions.append((int(x), int(y), int(w), int(h)))
    return regions


def read_image(engine: Any, rgb: Any) -> list[str]:
    """The page's lines in reading order: the body seen through its red channel, plus red lines of text (红头)."""
    import numpy as np

    mask = red_mask(rgb)
    body = np.repeat(rgb[..., :1], 3, axis=2)  # the red channel: red ink is as light as paper, black stays black
    body[mask] = 255  # and the red ink itself white: a large red title would still show as light grey
    boxes = boxes_from(recognise(engine, body))
    for x, y, w, h in red_text_regions(mask):
        crop = np.full((h, w, 3), 255, np.uint8)
        crop[mask[y : y + h, x : x + w]] = 0  # the red text, black on white
        red, _ = engine(np.pad(crop, ((8, 8), (8, 8), (0, 0)), constant_values=255), use_cls=False)
        boxes += boxes_from(red, x - 8, y - 8)
    return reading_order(boxes)


def recognise(engine: Any, image: Any, detect_side: int = DETECT_SIDE_PX) -> list:
    """RapidOCR's [[corners, text, score], …] for a page: text lines detected on the page scaled down to
    `detect_side`, each line then read from the full-resolution image. Reading from the scaled page (what
    RapidOCR's own call does past its max_side_len) loses small print: an A3 page's 9 pt text drops to 11 px."""
    import cv2
    import numpy as np

    height, width = image.shape[:2]
    ratio = min(1.0, detect_side / max(height, width))
    small = cv2.resize(image, None, fx=ratio, fy=ratio, interpolation=cv2.INTER_AREA) if ratio < 1 else image
    found, _ = engine.text_det(small)
    if found is None or len(found) == 0:
        return []
    corners = [np.asarray(box, np.float32) / ratio for box in engine.sorted_boxes(found)]
    read, _ = engine.text_rec(engine.get_crop_img_list(image, corners))
    return [[box.tolist(), text, score] for box, (text, score, *_rest) in zip(corners, read, strict=True)
            if score >= engine.text_score]


def render_page(document: Any, index: int) -> Any:
    """Page `index` (0-based) as an RGB array, at RENDER_SCALE but no side over MAX_SIDE_PX."""
    import numpy as np

    page = document[index]
    width, height = page.get_size()  # points
    scale = min(RENDER_SCALE, MAX_SIDE_PX / max(width, height, 1))
    image = page.render(scale=scale).to_pil().convert("RGB")
    return np.asarray(image)


# ---------------------------------------------------------------- the worker process


def _serve(conn: Any, parent: int) -> None:
    """The worker's loop: ("open", pdf bytes) → page count; ("page", i) → lines; errors are sent back as text."""
    import resource

    from ingest.embedding import _exit_with_parent

    _exit_with_parent(parent)
    limit = WORKER_MEMORY_MB * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import pypdfium2
    from rapidocr_onnxruntime import RapidOCR

    engine = RapidOCR()
    document = None
    conn.send(("ready", None))
    while True:
        command, value = conn.recv()
        try:
            if command == "open":
                document = pypdfium2.PdfDocument(value)
                conn.send(("ok", len(document)))
            elif command == "page":
                conn.send(("ok", read_image(engine, render_page(document, value))))
            else:
                return
        except MemoryError:
            conn.send(("error", f"needs more than {WORKER_MEMORY_MB} MB of memory"))
        except Exception as error:  # noqa: BLE001 - a broken page is reported, and the next one is read
            conn.send(("error", f"{type(error).__name__}: {error}"))


class PageReader:
    """Reads pages of one PDF by OCR in a worker process, each within `page_seconds`."""

    def __init__(self, data: bytes, page_seconds: float = PAGE_SECONDS) -> None:
        self.data = data
        self.page_seconds = page_seconds
        self._process: Any = None
        self._conn: Any = None

    def __enter__(self) -> PageReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read(self, index: int) -> list[str]:
        """Lines of page `index` (0-based); PageError when it cannot be read in time."""
        if self._process is None:
            self._start()
        self._conn.send(("page", index))
        return self._answer(self.page_seconds, f"OCR took over {self.page_seconds:g} s")

    def close(self) -> None:
        """End the worker (at once: it may be stuck in a page)."""
        if self._process is not None:
            if self._process.pid is not None:  # started
                self._process.kill()
                self._process.join()
            self._conn.close()
            self._process = self._conn = None

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")  # fork would copy the ingest's threads and locks
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, os.getpid()), name="policy-rag-ocr", daemon=True)
        self._process.start()
        child.close()
        self._answer(START_SECONDS, "the OCR engine did not start")
        self._conn.send(("open", self.data))
        self._answer(START_SECONDS, "pdfium could not open the PDF")

    def _answer(self, seconds: float, timeout_message: str) -> Any:
        deadline = time.monotonic() + seconds
        while not self._conn.poll(min(0.5, max(deadline - time.monotonic(), 0))):
            if time.monotonic() >= deadline:
                self.close()
                raise PageError(timeout_message)
            if not self._process.is_alive() and not self._conn.poll():
                break
        try:
            status, value = self._conn.recv()
        except (EOFError, OSError):
            code = self._process.exitcode
            self.close()
            raise PageError(f"the OCR worker ended (exit code {code})") from None
        if status == "error":
            raise PageError(value)
        return value
