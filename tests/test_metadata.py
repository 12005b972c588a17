"""Document metadata read from the text (ingest/metadata.py) and the validity it gives (rag/validity.py), on real
policy documents from ../shared/corpus-ext and on the variants real documents write."""

from __future__ import annotations

import json
from datetime import date

import pytest
from click.testing import CliRunner

from ingest.clean import clean_text, strip_markdown
from ingest.metadata import extract
from rag.validity import EXPIRED, IN_FORCE, NOT_YET, REPEALED, statuses

from .conftest import policy_record

def _extract(doc_id: str) -> dict:
    record = policy_record(doc_id)
    return extract(record["title"], clean_text(strip_markdown(record["text"])))


def test_a_notice_gives_its_number_issuer_dates_each_with_its_sentence():
    meta = _extract("govcn-d3011b64dc")  # 国务院关于印发个人所得税专项附加扣除暂行办法的通知
    assert meta["doc_number"] == "国发〔2018〕41号" and meta["issuer"] == "国务院"
    assert meta["date"] == "2018-12-13" and meta["effective"] == "2019-01-01"
    assert "2019年1月1日起施行" in meta["effective_from"].replace(" ", "")
    assert "41" in meta["doc_number_from"]


def test_what_a_notice_repeals_is_read_with_its_number():
    meta = _extract("govcn-6a9f9a2c64")  # …进一步加大激励支持力度的通知 replaces the 2016 notice
    assert "国办发〔2016〕82号" in meta["repeals"].split("；")
    assert "停止执行" in meta["repeals_from"]  # what the 2018 notice writes


@pytest.mark.parametrize(("text", "field", "value"), [
    ("晋政发[2019]12号\n正文", "doc_number", "晋政发〔2019〕12号"),
    ("国发（2019） 5 号\n正文", "doc_number", "国发〔2019〕5号"),
    ("正文。\n某某省人民政府\n二〇一九年三月十日", "date", "2019-03-10"),
    ("正文。\n某某省人民政府\n二〇一九年三月十日", "issuer", "某某省人民政府"),
    ("本办法自2020年7月1日起施行，有效期5年。", "expires", "2025-07-01"),
    ("本办法自印发之日起施行，有效期至2022年12月31日。\n2020年6月1日", "expires", "2022-12-31"),
    ("本意见自印发之日起实施。\n2020年6月1日", "effective", "2020-06-01"),
])
def test_the_variants_real_documents_write(text, field, value):
    assert extract("某某省人民政府关于某事的通知", text)[field] == value


def test_a_date_that_does_not_exist_is_kept_as_written_with_a_warning():
    meta = extract("关于某事的通知", "本办法自2020年2月30日起施行，有效期5年。\n2020年2月1日")
    assert meta["effective"] == "2020年2月30日" and "日期不存在" in meta["warnings"]
    assert "expires" not in meta  # no guess from a day that does not exist
    assert statuses({"d": _entry("某办法", **meta)}, date(2026, 1, 1))["d"].status == IN_FORCE


def test_a_number_cited_in_the_body_is_not_the_documents_own():
    meta = extract("关于某事的通知", "各市人民政府：\n根据《某办法》（国发〔2019〕5号）精神，现通知如下。")
    assert "doc_number" not in meta


def _entry(title: str, **meta: str) -> dict:
    return {"title": title, "meta": meta}


def test_status_on_a_day_names_the_replacement():
    docs = {
        "old": _entry("关于甲的通知", doc_number="国办发〔2016〕82号", date="2016-05-01"),
        "new": _entry("关于进一步甲的通知", date="2018-12-06", repeals="国办发〔2016〕82号", repeals_from="…同时废止。"),
        "dated": _entry("临时办法", effective="2020-07-01", expires="2025-07-01"),
        "coming": _entry("新办法", effective="2030-01-01"),
    }
    found = statuses(docs, date(2026, 12, 3))
    assert found["old"].status == REPEALED and found["old"].replaced_by == "关于进一步甲的通知"
    assert found["old"].since == "2018-12-06" and "同时废止" in found["old"].reason
    assert "已被《关于进一步甲的通知》废止" in found["old"].warning
    assert found["new"].status == IN_FORCE and found["new"].warning is None
    assert found["dated"].status == EXPIRED and statuses(docs, date(2024, 1, 1))["dated"].status == IN_FORCE
    assert found["coming"].status == NOT_YET


def test_docs_command_and_answers_say_when_a_cited_policy_is_replaced(tmp_path, embedder):
    """Ingest the 2018 notice and a 2016 one it repeals; `docs` lists both with their status and an answer
    citing the 2016 notice says it has been replaced, naming the 2018 one."""
    from ingest.build import ingest
    from rag.assistant import Assistant
    from rag.cli import main
    from rag.config import Settings

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    new = policy_record("govcn-6a9f9a2c64")
    (corpus / "2018.txt").write_text(new["title"] + "\n" + new["text"], encoding="utf-8")
    (corpus / "2016.txt").write_text(
        "国务院办公厅关于对真抓实干成效明显地方加大激励支持力度的通知\n国办发〔2016〕82号\n"
        "一、对落实地方政府债务管理制度成效明显的市县，在分配地方政府债务额度时予以倾斜支持。\n"
        "国务院办公厅\n2016年11月29日\n", encoding="utf-8")
    data = tmp_path / "data"
    ingest(Settings(data_dir=data), [corpus], embedder=embedder)
    out = CliRunner().invoke(main, ["docs", "--json", "--data-dir", str(data), "--as-of", "2026-12-03"])
    assert out.exit_code == 0, out.output
    rows = {r["doc_id"]: r for r in map(json.loads, out.output.splitlines())}
    assert rows["2016.txt"]["status"] == REPEALED and rows["2016.txt"]["doc_number"] == "国办发〔2016〕82号"
    assert rows["2016.txt"]["replaced_by"] == new["title"] and rows["2016.txt"]["replaced_by_id"] == "2018.txt"
    assert rows["2018.txt"]["status"] == IN_FORCE
    only = CliRunner().invoke(main, ["docs", "--data-dir", str(data), "--status", REPEALED])
    assert only.exit_code == 0 and "2016" in only.output and "进一步" not in only.output.split("已被")[0]
    answer = Assistant(Settings(data_dir=data), embedder=embedder).ask("落实地方政府债务管理制度成效明显的市县有什么倾斜支持？")
    cited = {c.clause.doc_id for c in answer.citations}
    assert "2016.txt" in cited, answer.text
    assert any("已被《" + new["title"] + "》废止" in n for n in answer.notices), answer.notices
    assert any("国办发〔2016〕82号" in c.memo for c in answer.citations if c.clause.doc_id == "2016.txt")


def test_a_correction_applies_at_once_and_survives_re_ingest(tmp_path, embedder, monkeypatch):
    from ingest.build import ingest
    from rag.cli import main
    from rag.config import Settings

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    record = policy_record("govcn-6a9f9a2c64")
    notice = corpus / "2018.txt"
    notice.write_text(record["title"] + "\n" + record["text"], encoding="utf-8")
    data = tmp_path / "data"
    settings = Settings(data_dir=data)
    ingest(settings, [corpus], embedder=embedder)

    def docs() -> dict:
        out = CliRunner().invoke(main, ["docs", "--json", "--data-dir", str(data), "--as-of", "2026-12-03"])
        assert out.exit_code == 0, out.output
        return json.loads(out.output.splitlines()[0])

    assert docs()["status"] == IN_FORCE and docs()["doc_number"] == "国办发〔2018〕117号"
    fixed = CliRunner().invoke(main, ["meta", "进一步加大激励", "--set", "expires=2020-12-31", "--set",
                                      "doc_number=国办发〔2018〕118号", "--data-dir", str(data)])
    assert fixed.exit_code == 0, fixed.output
    assert json.loads(fixed.output)["meta"]["expires"] == "2020-12-31"
    assert docs()["status"] == EXPIRED and docs()["doc_number"] == "国办发〔2018〕118号"
    # the file changes and is ingested again: the correction stays
    notice.write_text(record["title"] + "\n" + record["text"] + "\n附：联系人。", encoding="utf-8")
    report = ingest(settings, [corpus], embedder=embedder)
    assert report.documents[0].status == "updated"
    assert docs()["status"] == EXPIRED and docs()["doc_number"] == "国办发〔2018〕118号"
    # bad input names the field, and changes nothing
    for args, says in ((["--set", "expires=明年"], "expires"), (["--set", "colour=red"], "colour"),
                       (["--set", "issuer"], "FIELD=VALUE")):
        bad = CliRunner().invoke(main, ["meta", "进一步加大激励", *args, "--data-dir", str(data)])
        assert bad.exit_code == 1 and says in bad.output
    assert docs()["status"] == EXPIRED
    nothing = CliRunner().invoke(main, ["meta", "没有这份文件", "--data-dir", str(data)])
    assert nothing.exit_code == 1 and "matches 0 documents" in nothing.output

    # a running app sees the document expire the day after its last day, with no ingest in between
    import rag.assistant
    from rag.errors import PolicyRagError

    CliRunner().invoke(main, ["meta", "进一步加大激励", "--set", "expires=2027-06-30", "--data-dir", str(data)])
    running = rag.assistant.Assistant(settings, embedder=embedder)
    monkeypatch.setattr(rag.assistant, "current_day", lambda: date(2027, 6, 30))
    assert running.in_force_documents() == ["2018.txt"]
    monkeypatch.setattr(rag.assistant, "current_day", lambda: date(2027, 7, 1))
    with pytest.raises(PolicyRagError, match="没有现行有效的文件"):
        running.in_force_documents()


def test_when_both_versions_answer_the_current_one_leads(tmp_path, embedder):
    """A real notice (国发〔2019〕5号) and a revised copy of it whose last sentence repeals it: the old one is
    已被废止或替代 by the copy, and an answer drawn from both puts the copy first, though the question uses the
    old title's words (the warning on an answer citing a repealed notice: the test above)."""
    from ingest.build import ingest
    from rag.assistant import Assistant
    from rag.config import Settings
    from rag.validity import statuses

    old = policy_record("govcn-fb744a8adc")
    body = old["text"].replace("国发〔2019〕5号", "国发〔2021〕9号").replace("2019年1月27日", "2021年3月1日")
    revised = ("国务院关于在市场监管领域进一步推行部门联合“双随机、一公开”监管的意见\n"
               + body.replace("（此件公开发布）", f"《{old['title']}》（国发〔2019〕5号）同时废止。"))
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "2019.txt").write_text(old["title"] + "\n" + old["text"], encoding="utf-8")
    (corpus / "2021.txt").write_text(revised, encoding="utf-8")
    data = tmp_path / "data"
    ingest(Settings(data_dir=data), [corpus], embedder=embedder)
    assistant = Assistant(Settings(data_dir=data), embedder=embedder)
    found = statuses(assistant.index.manifest.documents, date(2026, 12, 3))
    assert found["2019.txt"].status == REPEALED and found["2019.txt"].replaced_by_id == "2021.txt"
    assert found["2021.txt"].status == IN_FORCE

    question = "全面推行部门联合双随机一公开监管，重点检查事项的抽查比例有上限吗？"  # the old title's words
    hits = assistant.search(question)
    assert {h.clause.doc_id for h in hits} == {"2019.txt", "2021.txt"}  # both versions answer
    first = [h.clause.doc_id for h in hits]
    assert first.index("2021.txt") < first.index("2019.txt")
    answer = assistant.ask(question)
    named = [c.clause.doc_id for c in answer.citations] or [h.clause.doc_id for h in answer.retrieved]
    assert named[0] == "2021.txt", answer.text  # cited first, or named first among the closest clauses
    assert answer.text.find("进一步推行") < answer.text.find("全面推行部门联合"), answer.text


def test_a_memo_string_names_the_document_by_its_number_or_else_its_date():
    from rag.records import Citation, Clause

    def memo(**meta) -> str:
        clause = Clause("a.txt#二、（一）", "a.txt", "关于加快构建山西省创新生态的指导意见", ("二、", "（一）"), (),
                        "（一）建设高水平创新平台。", 0, 10, meta=meta)
        return Citation(1, clause, "建设高水平创新平台").memo

    assert memo(doc_number="晋政发〔2020〕6号", date="2020-03-05") == \
        "《关于加快构建山西省创新生态的指导意见》（晋政发〔2020〕6号）二、（一）：“建设高水平创新平台”"
    assert memo(date="2020-03-05").startswith("《关于加快构建山西省创新生态的指导意见》（2020年3月5日）二、（一）")
    assert memo(date="2020年2月30日").startswith("《关于加快构建山西省创新生态的指导意见》（2020年2月30日）")
    assert memo().startswith("《关于加快构建山西省创新生态的指导意见》二、（一）：")
