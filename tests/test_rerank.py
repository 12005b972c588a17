"""The lexical rerank on real regulations from ../shared/corpus-ext: the clause that says what the question
asks (a definition, the date a regulation takes effect) comes first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.index import HEADING_CHARS, TITLE_CHARS, embed_text
from rag.question import Question
from rag.sentences import clause_sentences, sentence_match
from rag.records import Clause

LAWS = Path(__file__).resolve().parents[2] / "shared" / "corpus-ext" / "text" / "laws_lawrefbook.jsonl"
# short regulations, each with a 本条例所称X，是指 article and a 本条例自…起施行 article
LAW_IDS = ("lrb-9df59e039d09", "lrb-771488356d41", "lrb-98d162638bf5", "lrb-c1f293da67f2", "lrb-58976e4ff5f7",
           "lrb-78262ccaf266")
# (question as staff ask it, title of the answering regulation, the article that answers it)
QUESTIONS = [
    ("什么是清真食品？", "上海市清真食品管理条例", "第二条"),
    ("实验动物指的是什么？", "北京市实验动物管理条例", "第二条"),
    ("遗体捐献是什么意思", "上海市遗体捐献条例", "第二条"),
    ("上海的志愿服务条例从哪天开始施行？", "上海市志愿服务条例", "第三十六条"),
    ("北京古树名木保护管理条例何时施行", "北京市古树名木保护管理条例", "第二十七条"),
    ("遗体捐献条例哪天起施行？", "上海市遗体捐献条例", "第二十八条"),
]


@pytest.fixture(scope="module")
def laws_dir(tmp_path_factory, embedder) -> Path:
    from ingest.build import ingest
    from rag.config import Settings

    if not LAWS.exists():
        pytest.skip(f"{LAWS} not found (../shared/corpus-ext)")
    records = [json.loads(line) for line in LAWS.read_text(encoding="utf-8").splitlines()]
    chosen = [r for r in records if r["id"] in LAW_IDS]
    assert len(chosen) == len(LAW_IDS)
    root = tmp_path_factory.mktemp("laws")
    corpus = root / "corpus"
    corpus.mkdir()
    (corpus / "laws.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in chosen), encoding="utf-8")
    report = ingest(Settings(data_dir=root / "data", corpus_dir=corpus), [corpus], embedder=embedder)
    assert not report.failed, report.failed
    return root / "data"


def _rank(hits, title: str, label: str) -> int | None:
    return next((i for i, h in enumerate(hits, 1) if h.clause.title == title and h.clause.label.endswith(label)), None)


def test_the_answering_article_comes_first(laws_dir, embedder):
    from rag.assistant import Assistant
    from rag.config import Settings

    with_rerank = Assistant(Settings(data_dir=laws_dir), embedder=embedder)
    without = Assistant(Settings(data_dir=laws_dir, lexical_rerank=False), embedder=embedder)
    ranks = []
    for question, title, label in QUESTIONS:
        ours = _rank(with_rerank.search(question, k=10), title, label)
        plain = _rank(without.retriever.search(Question.of(question), k=10), title, label)  # retrieval alone
        assert ours == 1, (question, ours, [(h.clause.title, h.clause.label) for h in with_rerank.search(question, k=3)])
        ranks.append((question, ours, plain))
    # the rerank is what puts them first: without it some are lower
    assert any(plain is None or plain > 1 for _, _, plain in ranks), ranks


def test_hits_say_what_the_rerank_added(laws_dir, embedder):
    from rag.assistant import Assistant
    from rag.config import Settings

    hits = Assistant(Settings(data_dir=laws_dir), embedder=embedder).search("什么是清真食品？", k=5)
    assert all("lexical" in h.scores for h in hits)
    assert hits[0].scores["lexical"] > hits[-1].scores["lexical"]


@pytest.mark.parametrize(("question", "kinds"), [
    ("什么是湿地？", {"definition"}),
    ("《网络安全审查办法》自何时开始实施？", {"in_force", "date"}),
    ("贵阳市从几号开始推进企业复工复产？", {"date"}),
    ("特种设备事故分为哪几个等级？", {"category"}),
    ("制定这个条例的目的是什么", {"purpose"}),
    ("秦创原到2026年技术合同成交额要达到多少？", set()),
])
def test_question_kinds(question, kinds):
    assert Question.of(question).kinds == kinds


def test_sentence_match_prefers_the_sentence_holding_the_terms_together():
    question = "什么是清真食品？"
    defining = "第二条 本条例所称清真食品，是指按照回族等少数民族的饮食习惯，生产、加工、经营的食品。"
    scattered = "第十条 食品经营者应当遵守本条例。清真餐饮的场所应当保持清洁。食品卫生由卫生部门监督。"
    assert sentence_match(question, defining) > sentence_match(question, scattered)
    assert sentence_match(question, "") == 0.0
    assert sentence_match("？？", "第一条 为了规范管理，制定本条例。") == 0.0


def test_clause_sentences_fold_each_sentence_and_drop_the_marker():
    sentences = clause_sentences("（三）投资２０２６年达到５０％。\n第二句　有空格；")
    assert [s.body for s in sentences] == ["投资２０２６年达到５０％。", "第二句　有空格；"]
    assert [s.folded for s in sentences] == ["投资2026年达到50%。", "第二句有空格;"]
    # a NUL inside the text (never produced by the cleaner) does not shift the sentences
    assert [s.folded for s in clause_sentences("甲\x00乙。丙。")] == ["甲\x00乙。", "丙。"]


def test_embedded_text_keeps_room_for_the_clause():
    title = "关于开展新型冠状病毒感染的肺炎心理危机干预工作的紧急通知"
    clause = Clause(clause_id="d#四、（二）", doc_id="d", title=title, path=("四、", "（二）"),
                    headings=("四、工作方式和具体安排",), text="（二）根据工作需要，至少组建4支心理危机干预队伍，配队长1名。",
                    start=0, end=10)
    text = embed_text(clause, 64)
    assert text.startswith(title[:TITLE_CHARS] + "\n" + clause.headings[0][:HEADING_CHARS] + "\n")
    assert "组建4支" in text and len(text) <= 64


WETLAND_LAW = Path(__file__).resolve().parents[2] / "shared" / "bench" / "legal_dc" / "corpus.jsonl"


def test_a_definition_question_gets_the_defining_article_of_a_law_that_repeats_the_word(tmp_path, embedder,
                                                                                        monkeypatch):
    """Every article of the 湿地保护法 says 湿地; the one that answers 什么是湿地 is 本法所称湿地，是指…"""
    from ingest.build import ingest
    from rag import assistant as assistant_module
    from rag.assistant import Assistant
    from rag.config import Settings

    if not WETLAND_LAW.exists():
        pytest.skip(f"{WETLAND_LAW} not found (../shared/bench)")
    law = next(r for r in map(json.loads, WETLAND_LAW.read_text(encoding="utf-8").splitlines())
               if r["title"] == "中华人民共和国湿地保护法")
    assert law["text"].count("湿地") > 200
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "湿地保护法.txt").write_text(law["text"], encoding="utf-8")
    ingest(Settings(data_dir=tmp_path / "data"), [corpus], embedder=embedder)
    assistant = Assistant(Settings(data_dir=tmp_path / "data"), embedder=embedder)
    questions = ["什么是湿地？", "湿地是指什么", "《湿地保护法》里的湿地是什么意思"]
    for question in questions:
        hits = assistant.search(question, k=5)
        assert "本法所称湿地，是指" in hits[0].clause.text, (question, [h.clause.label for h in hits])
        answer = assistant.ask(question)
        assert not answer.abstained and "本法所称湿地，是指" in answer.citations[0].clause.text, answer.text
    monkeypatch.setattr(assistant_module, "defined_term", lambda text: None)  # without it: another article first
    assert any("本法所称湿地，是指" not in assistant.search(q, k=5)[0].clause.text for q in questions)
