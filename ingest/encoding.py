"""Text decoding: raw bytes → str for UTF-8, UTF-16 and GB18030/GBK files, or a DocumentReadError."""

from __future__ import annotations

import codecs
import re

from rag.errors import DocumentReadError

_BOMS = (  # longest first: the UTF-32 LE BOM starts with the UTF-16 LE one
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# Characters a policy document is made of: CJK, CJK punctuation, full-width forms, printable ASCII, etc.
# Latin Extended and half-width katakana are left out: binary junk read as UTF-16 is full of them.
_EXPECTED = re.compile(
    r"[\t\n\r\f\x20-\x7e\u00a0-\u00ff\u2000-\u206f\u2100-\u22ff\u2460-\u27bf\u2e80-\u2fdf"
    r"\u3000-\u30ff\u3100-\u312f\u3200-\u33ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffef\ufeff]"
)
_CHINESE = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef\u2018-\u201d\u2026]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_CONTROL_BYTE = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_PLAUSIBLE = 0.97


def decode_text(data: bytes, name: str) -> str:
    """Decode a text file's bytes; raise DocumentReadError naming `name` when it is empty or not text."""
    if not data.strip():
        raise DocumentReadError(f"{name}: empty file")
    decoded = _decode(data)
    if decoded is None and b"\x00" in data:
        raise DocumentReadError(f"{name}: not text (binary data at byte {data.index(0)})")
    if decoded is None:
        raise DocumentReadError(f"{name}: not text (neither UTF-8 nor GB18030, bad byte at {_utf8_error_at(data)})")
    text, encoding = decoded
    text = text.removeprefix("\ufeff").removesuffix("\x1a")  # \x1a: DOS end-of-file mark
    if not text.strip():
        raise DocumentReadError(f"{name}: empty file")
    _reject_control_chars(text, data, encoding, name)
    return text


def _decode(data: bytes) -> tuple[str, str] | None:
    """(text, encoding) by the first rule that fits: BOM, UTF-16 without BOM, UTF-8, GB18030, detection."""
    if (decoded := _decode_with_bom(data)) is not None:
        return decoded
    if b"\x00" in data:
        return _decode_utf16_without_bom(data)
    return _decode_utf8(data) or _decode_gb18030(data) or _decode_detected(data)


def _decode_with_bom(data: bytes) -> tuple[str, str] | None:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                text = data[len(bom):].decode(encoding)
            except UnicodeDecodeError:
                return None
            return (text, encoding) if _plausibility(text) >= _PLAUSIBLE else None
    return None


def _decode_utf16_without_bom(data: bytes) -> tuple[str, str] | None:
    """UTF-16 without a BOM: NUL high bytes of ASCII characters sit at odd (LE) or even (BE) offsets."""
    if len(data) % 2:
        return None
    odd_nuls = data[1::2].count(0)
    even_nuls = data[0::2].count(0)
    encoding = "utf-16-le" if odd_nuls >= even_nuls else "utf-16-be"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        return None
    return (text, encoding) if _plausibility(text) >= _PLAUSIBLE else None


def _decode_utf8(data: bytes) -> tuple[str, str] | None:
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return None


def _decode_gb18030(data: bytes) -> tuple[str, str] | None:
    """GB18030 (a superset of GBK and GB2312) when the non-ASCII characters decode to Chinese."""
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        return None
    non_ascii = [c for c in text if ord(c) > 0x7F]
    chinese = sum(1 for c in non_ascii if _CHINESE.match(c))
    return (text, "gb18030") if non_ascii and chinese / len(non_ascii) >= 0.9 else None


def _decode_detected(data: bytes) -> tuple[str, str] | None:
    """Last resort: charset-normalizer's guess, accepted only when it reads as plausible text."""
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        return None
    text = str(best)
    return (text, best.encoding) if _plausibility(text) >= _PLAUSIBLE else None


def _plausibility(text: str) -> float:
    """Share of characters one expects in a Chinese or English document."""
    if not text:
        return 1.0  # nothing implausible; the caller reports an empty file
    return len(_EXPECTED.findall(text)) / len(text)


def _reject_control_chars(text: str, data: bytes, encoding: str, name: str) -> None:
    """Control characters other than tab/newline/form feed mean a binary file that happened to decode."""
    match = _CONTROL.search(text)
    if match is None:
        return
    in_bytes = _CONTROL_BYTE.search(data) if not encoding.startswith(("utf-16", "utf-32")) else None
    at = in_bytes.start() if in_bytes else len(text[: match.start()].encode(encoding, errors="replace"))
    raise DocumentReadError(f"{name}: not text (binary data at byte {at})")


def _utf8_error_at(data: bytes) -> int:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        return error.start
    return 0
