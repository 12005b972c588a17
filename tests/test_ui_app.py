"""ui.app handlers without a browser: streaming, follow-ups, errors as messages, feedback, memo, uploads, the
document table, in-force-only questions, removing a document and uploading a new version of one."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import gradio as gr
import pytest
from docx import Document as DocxDocument

from rag.assistant import Assistant
from rag.config import Settings
from ui.app import AppState, Handlers

from .fake_openai import FakeOpenAI
from .test_ui_upload import YANGLING

TECH = "秦创原到2026年技术合同成交额要达到多少？"
YANGLING_TITLE = "杨凌示范区支持种业创新的若干措施"
YANGLING_QUESTION = "杨凌对新认定的国家级种业创新平台奖励多少？"


def handlers_for(data_dir: Path, embedder, **settings) -> Handlers:
    s = Settings(data_dir=data_dir, **settings)
    return Handlers(AppState(s, Assistant(s, embedder=embedder)))


def run(handlers: Handlers, question: str, history=None, past=None, docs=None, in_force=False):
    """Drain the streaming handler; returns every yielded (history, sources, turns, textbox)."""
    return list(handlers.ask(question, history or [], past or [], docs, in_force))


def test_ask_streams_into_the_chat_then_fills_the_sources(seed_index_dir, embedder):
    steps = run(handlers_for(seed_index_dir, embedder), TECH)
    first, last = steps[0], steps[-1]
    assert first[0][-1]["content"].startswith("正在检索") and first[3] == ""        # shown at once, box cleared
    history, sources, turns, _ = last
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert "6000亿元" in history[-1]["content"] and 'href="#src-1-1"' in history[-1]["content"]
    assert 'id="src-1-1"' in sources and "<mark>" in sources
    assert len(turns) == 1 and turns[0].answer.citations


def test_follow_up_is_answered_in_the_context_of_the_previous_question(seed_index_dir, embedder):
    handlers = handlers_for(seed_index_dir, embedder)
    history, _, turns, _ = run(handlers, "秦创原对科技金融有什么支持？")[-1]
    history, sources, turns, _ = run(handlers, "那山西呢？", history, turns)[-1]
    assert turns[-1].question == "山西对科技金融有什么支持？"
    assert "按「山西对科技金融有什么支持？」理解" in history[-1]["content"]
    assert "第2问：山西对科技金融有什么支持？" in sources and "第1问：秦创原对科技金融有什么支持？" in sources


def test_ask_within_chosen_documents(seed_index_dir, embedder):
    handlers = handlers_for(seed_index_dir, embedder)
    shanxi = [d for d, e in handlers.state.documents().items() if "山西" in e["title"]]
    *_, (_, _, turns, _) = run(handlers, "对中试基地有什么支持？", docs=shanxi)
    assert {c.clause.doc_id for c in turns[0].answer.citations} == set(shanxi)
    assert turns[0].docs == tuple(shanxi)


def test_missing_index_is_a_message_not_a_traceback(tmp_path, embedder):
    handlers = handlers_for(tmp_path / "empty", embedder)
    history, _, turns, _ = run(handlers, TECH)[-1]
    assert "还没有可检索的政策文件" in history[-1]["content"]
    assert turns[0].answer is None
    assert "还没有收录任何文件" in handlers.documents()[0]


def test_llm_answer_streams_chunk_by_chunk(seed_index_dir, embedder):
    reply = "到2026年，全省技术合同成交额突破6000亿元[1]。"
    with FakeOpenAI(lambda messages: reply) as server:
        handlers = handlers_for(seed_index_dir, embedder, answerer="llm", llm_base_url=server.url)
        steps = run(handlers, TECH)
    partial = [s[0][-1]["content"] for s in steps if s[0][-1]["content"].endswith("▍")]
    assert len(partial) >= 3                                   # the fake server sends 4 characters at a time
    assert "6000亿元" in steps[-1][0][-1]["content"] and "href=\"#src-1-1\"" in steps[-1][0][-1]["content"]


def test_feedback_is_appended_as_json_lines(seed_index_dir, tmp_path, embedder):
    handlers = handlers_for(seed_index_dir, embedder)
    handlers.state.settings = Settings(data_dir=tmp_path)       # feedback goes beside a throwaway index
    _, _, turns, _ = run(handlers, TECH)[-1]
    note, box = handlers.like(turns, "引用准确", gr.LikeData(None, {"index": 1, "value": "", "liked": True}))
    assert "已记录“赞”和您的意见" in note and box == ""
    handlers.like(turns, "", gr.LikeData(None, {"index": [1, 0], "value": "", "liked": False}))
    lines = [json.loads(x) for x in (tmp_path / "feedback.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [x["rating"] for x in lines] == ["up", "down"]
    assert lines[0]["comment"] == "引用准确" and lines[0]["question"] == TECH and "6000亿元" in lines[0]["answer"]
    assert lines[0]["citations"][0]["label"] == "二、（一）3." and lines[0]["citations"][0]["memo"]


def test_export_memo_offers_docx_and_markdown(seed_index_dir, embedder):
    handlers = handlers_for(seed_index_dir, embedder)
    _, _, turns, _ = run(handlers, TECH)[-1]
    files = [Path(f) for f in handlers.export(turns).constructor_args["value"]]
    assert [p.suffix for p in files] == [".docx", ".md"]
    assert any("6000亿元" in p.text for p in DocxDocument(str(files[0])).paragraphs)
    assert "6000亿元" in files[1].read_text(encoding="utf-8")
    memo_dir = handlers.state.memo_dir
    del handlers, turns
    gc.collect()
    assert not memo_dir.exists()  # an app (or test) that goes away leaves no folder in /tmp


def test_upload_handler_reports_each_file_and_refreshes_the_documents(seed_index_copy, tmp_path, embedder):
    handlers = handlers_for(seed_index_copy, embedder)
    good = tmp_path / "杨凌种业措施.txt"
    good.write_bytes(YANGLING.encode("gb18030"))
    bad = tmp_path / "fake.pdf"
    bad.write_text("not a pdf")
    report, summary, table, *_pickers, cleared = handlers.add_files([str(good), str(bad)])
    assert "杨凌种业措施\\.txt | ✓ 已加入 | 4" in report and "fake\\.pdf | ✗ 未接收" in report
    assert "共 3 份文件" in summary and "杨凌示范区支持种业创新的若干措施" in titles(table)
    assert cleared is None
    *_, (history, _, _, _) = run(handlers, "杨凌对新认定的国家级种业创新平台奖励多少？")
    assert "500万元" in history[-1]["content"]


def test_upload_without_files_is_a_message():
    with pytest.raises(gr.Error, match="请先选择"):
        Handlers(AppState(Settings())).add_files([])


def test_first_upload_creates_the_index(tmp_path, embedder):
    handlers = handlers_for(tmp_path / "new", embedder)
    handlers.state.warm()                                                  # no index yet: no error
    good = tmp_path / "杨凌种业措施.txt"
    good.write_bytes(YANGLING.encode("gb18030"))
    report, summary, *_ = handlers.add_files([str(good)])
    assert "✓ 已加入" in report and "共 1 份文件" in summary
    *_, (history, _, _, _) = run(handlers, "杨凌对新认定的国家级种业创新平台奖励多少？")
    assert "500万元" in history[-1]["content"]


# ---- the 文件 tab: table, in force only, remove, new version ---------------------------------------------
def titles(table) -> list[str]:
    return [row[0] for row in table.constructor_args["value"] or []]


def table_rows(handlers: Handlers, **filters) -> dict[str, list]:
    _, table = handlers.table(**filters)
    return {row[-1]: row for row in table.constructor_args["value"] or []}


def upload(handlers: Handlers, folder: Path, name: str, text: str, replaces: str | None = None) -> str:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return handlers.add_files([str(path)], replaces)[0]


def test_a_new_version_replaces_the_old_and_in_force_questions_cite_only_it(seed_index_copy, tmp_path, embedder):
    handlers = handlers_for(seed_index_copy, embedder)
    upload(handlers, tmp_path, "杨凌种业措施.txt", YANGLING)
    (old,) = [d for d, row in table_rows(handlers).items() if row[0] == YANGLING_TITLE]
    report = upload(handlers, tmp_path, "杨凌种业措施（修订）.txt", YANGLING.replace("500万元", "800万元"), old)
    assert f"原文件 {old.replace('.', chr(92) + '.')} 已被《{YANGLING_TITLE}》替代" in report
    rows = table_rows(handlers)
    (new,) = [d for d, row in rows.items() if row[0] == YANGLING_TITLE and d != old]
    assert rows[old][6] == f"已被废止或替代（被《{YANGLING_TITLE}》替代）" and rows[new][6] == "现行有效"
    assert list(table_rows(handlers, state="已被废止或替代")) == [old]

    turns = run(handlers, YANGLING_QUESTION, in_force=True)[-1][2]
    assert {c.clause.doc_id for c in turns[0].answer.citations} == {new} and "800万元" in turns[0].answer.text
    anywhere = run(handlers, YANGLING_QUESTION)[-1][2][0].answer
    assert old in {h.clause.doc_id for h in anywhere.retrieved}           # without the filter the old one is found

    # the replacement is a correction: it survives re-ingest of the uploads folder
    from ingest.build import ingest
    from ui.upload import uploads_dir

    ingest(handlers.state.settings, [uploads_dir(handlers.state.settings)], embedder=embedder)
    handlers.state.reload()
    assert table_rows(handlers)[old][6].startswith("已被废止或替代")


def test_in_force_only_with_nothing_in_force_is_a_message(seed_index_copy, tmp_path, embedder):
    handlers = handlers_for(seed_index_copy, embedder)
    upload(handlers, tmp_path, "杨凌种业措施.txt", YANGLING)
    (old,) = [d for d, row in table_rows(handlers).items() if row[0] == YANGLING_TITLE]
    upload(handlers, tmp_path, "杨凌种业措施（修订）.txt", YANGLING.replace("500万元", "800万元"), old)
    history, _, turns, _ = run(handlers, YANGLING_QUESTION, docs=[old], in_force=True)[-1]
    assert "没有现行有效的文件可查" in history[-1]["content"] and turns[0].answer is None


def test_remove_asks_first_then_takes_the_document_and_its_file_away(seed_index_copy, tmp_path, embedder):
    handlers = handlers_for(seed_index_copy, embedder)
    upload(handlers, tmp_path, "杨凌种业措施.txt", YANGLING)
    (doc_id,) = [d for d, row in table_rows(handlers).items() if row[0] == YANGLING_TITLE]
    with pytest.raises(gr.Error, match="请先"):
        handlers.confirm_remove(None)
    row, note = handlers.confirm_remove(doc_id)
    assert row.constructor_args["visible"] is True and f"确定从文件库删除《{YANGLING_TITLE}》吗" in note
    hidden, done, summary, table, *_ = handlers.remove(doc_id)
    assert hidden.constructor_args["visible"] is False and f"已删除《{YANGLING_TITLE}》" in done
    assert "共 2 份文件" in summary and YANGLING_TITLE not in titles(table)
    from ui.manage import removed_dir
    from ui.upload import uploads_dir

    settings = handlers.state.settings
    assert not any(uploads_dir(settings).iterdir())
    assert [p.name.split("-", 2)[-1] for p in removed_dir(settings).iterdir()] == ["杨凌种业措施.txt"]
    answer = run(handlers, YANGLING_QUESTION)[-1][2][0].answer
    assert doc_id not in {h.clause.doc_id for h in answer.retrieved}
    # a later upload ingests the uploads folder again: the removed document stays out
    upload(handlers, tmp_path, "其他.txt", "关于某事项的通知\n一、总体要求\n做好某事项。")
    assert YANGLING_TITLE not in [row[0] for row in table_rows(handlers).values()]


def test_table_filters_and_row_pick(seed_index_dir, embedder):
    handlers = handlers_for(seed_index_dir, embedder)
    summary, table, states, issuers, years, docs, target, replaces = handlers.documents()
    assert len(titles(table)) == 2 and states.constructor_args["choices"][0] == ("全部状态", "全部")
    doc_id = table.constructor_args["value"][1][-1]
    summary, table = handlers.table(state="已过有效期")
    assert titles(table) == [] and "当前筛选显示 0 份" in summary
    pick = handlers.pick(gr.SelectData(None, {"index": [1, 0], "value": "x", "row_value": ["标题", doc_id]}))
    assert pick.constructor_args["value"] == doc_id
