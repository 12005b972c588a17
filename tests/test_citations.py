"""The citation check: every figure an answer sentence states must be in the clause it cites."""

from __future__ import annotations

import json

from rag.citations import check_citations
from rag.records import Citation


def test_citation_check_flags_a_figure_missing_from_its_clause(assistant):
    hit = assistant.search("全省技术合同成交额突破6000亿元")[0]
    cites = [Citation(1, hit.clause, "")]
    assert check_citations("全省技术合同成交额突破6000亿元[1]。", cites) == []
    problems = check_citations("全省技术合同成交额突破8000亿元[1]。", cites)
    assert len(problems) == 1 and "8000亿" in problems[0].reason and problems[0].citation == 1
    assert check_citations("成交额突破6000亿元。", cites)[0].citation is None  # a figure with no source

    # the answer's own list numbers and a cited document's title are not figures to find in the clause
    assert check_citations("1. 全省技术合同成交额突破6000亿元[1]。\n2、成交额突破6000亿元[1]。", cites) == []
    title = f"《{hit.clause.title}》：全省技术合同成交额突破6000亿元[1]。"
    assert "2024" in title and check_citations(title, cites) == []
    (problem,) = check_citations("3. 全省技术合同成交额突破8000亿元[1]。", cites)
    assert "8000亿" in problem.reason and "3" not in problem.reason.split(" not found")[0]
    (problem,) = check_citations("3.5亿元用于奖补[1]。", cites)  # a decimal at a line's start is a figure
    assert problem.reason.startswith("3.5亿")


def test_extractive_answers_raise_no_false_citation_warnings(assistant):
    """Lists ("1. …[1]") and comparisons ("《…（2024—2026年）》：…[1]") used to warn about their own
    numbering and the title's years: 22 of eval/qa.jsonl's 112 answers did."""
    with open("eval/qa.jsonl", encoding="utf-8") as f:
        items = [json.loads(line) for line in f]
    warned = [(item["id"], answer.unsupported) for item in items
              if (answer := assistant.ask(item["question"])).unsupported]
    assert not warned, warned[:3]
