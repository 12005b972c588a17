"""Test vectors on the seed corpus: which clause (label) holds which text, shared by parser and retrieval tests."""

from __future__ import annotations

from dataclasses import dataclass

SX = "关于加快构建山西省创新生态的指导意见.txt"                    # seed 000
QCY = "秦创原创新驱动平台建设三年行动计划（2024—2026年）.txt"        # seed 003


@dataclass(frozen=True)
class ClauseVector:
    """The clause of `file` that holds every `must_include` string is labelled `label`."""

    file: str
    label: str
    must_include: tuple[str, ...]
    must_not_include: tuple[str, ...] = ()


VECTORS = [
    ClauseVector(SX, "二、（二）2.", ("着力开展以“三方帮扶",)),
    ClauseVector(QCY, "二、（五）16.", ("支持西安申报科创金融改革试验区",)),
    ClauseVector(SX, "二、（二）1.一是", ("一是实施关键核心技术和共性技术突破工程",), ("二是实施重大创新平台",)),
    ClauseVector(QCY, "一、", ("全省技术合同成交额突破6000亿元", "一、总体要求")),
    ClauseVector(QCY, "二、（一）3.", ("畅通成果转化链条",)),
    ClauseVector(QCY, "", ("为全面贯彻落实党的二十大精神",), ("一、总体要求",)),
    ClauseVector(SX, "", ("为深入贯彻省委",), ("一、总体要求",)),
    # a parent keeps only its own line(s), not its children's text
    ClauseVector(SX, "二、（一）", ("（一）构建产业集群创新生态",), ("坚持全面构建",)),
    ClauseVector(SX, "二、（二）3.", ("构建创新成果产业化体系",), ("发挥企业科技成果产业化的主体作用",)),
    # lines without a marker belong to the clause above them
    ClauseVector(SX, "一、（二）", ("主要目标", "三年点上突破", "五年基本成型")),
    ClauseVector(SX, "二、（二）7.二是", ("建立创新生态信息化体系",)),
    ClauseVector(QCY, "三、17.", ("加强组织领导",)),
]


@dataclass(frozen=True)
class HeadingVector:
    """The ancestors' headings (marker + short heading) of the clause `label` in `file`."""

    file: str
    label: str
    headings: tuple[str, ...]


HEADING_VECTORS = [
    HeadingVector(
        SX, "二、（二）1.一是", ("二、构建创新生态系统", "（二）打造创新生态技术体系", "1.构建重大技术创新体系"),
    ),
    HeadingVector(QCY, "二、（一）3.", ("二、重点任务", "（一）全面深化“三项改革”，深入挖掘科技成果转化潜能")),
    HeadingVector(QCY, "三、19.", ("三、保障措施",)),
    HeadingVector(QCY, "一、", ()),
]

# Every clause label of each seed, in document order: the whole tree, as a reader of the seed sees it.
SEED_LABELS = {
    SX: (
        "", "一、", "一、（一）", "一、（二）", "二、", "二、（一）", "二、（一）1.", "二、（一）2.",
        "二、（二）", "二、（二）1.", "二、（二）1.一是", "二、（二）1.二是", "二、（二）1.三是", "二、（二）2.",
        "二、（二）3.", "二、（二）3.一是", "二、（二）3.二是", "二、（二）3.三是", "二、（二）3.四是",
        "二、（二）4.", "二、（二）4.一是", "二、（二）4.二是", "二、（二）4.三是", "二、（二）4.四是",
        "二、（二）4.五是", "二、（二）4.六是", "二、（二）5.", "二、（二）5.一是", "二、（二）5.二是",
        "二、（二）5.三是", "二、（二）6.", "二、（二）6.一是", "二、（二）6.二是", "二、（二）7.",
        "二、（二）7.一是", "二、（二）7.二是",
    ),
    QCY: (
        "", "一、", "二、", "二、（一）", "二、（一）1.", "二、（一）2.", "二、（一）3.", "二、（二）",
        "二、（二）4.", "二、（二）5.", "二、（二）6.", "二、（三）", "二、（三）7.", "二、（三）8.",
        "二、（三）9.", "二、（三）10.", "二、（四）", "二、（四）11.", "二、（四）12.", "二、（四）13.",
        "二、（五）", "二、（五）14.", "二、（五）15.", "二、（五）16.", "三、", "三、17.", "三、18.", "三、19.",
    ),
}
