"""End to end in a real browser: `policy-rag serve` over the seed index, driven by Debian's Chromium.

Asks, opens the source, copies a citation, rates the answer, exports the memo and reads the .docx,
uploads a GB18030 .txt and asks about it; in an en-US browser, the 文件 tab (Chinese throughout, Gradio's upload
text included): its status table and filter, a new version replacing a document, an in-force-only question, and
删除. Saves screenshots under artifacts/ (POLICY_RAG_UPDATE_SCREENSHOT=1 also refreshes docs/screenshot-chat.png
and docs/screenshot-files.png for the README).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from docx import Document as DocxDocument

from .conftest import REPO
from .test_ui_upload import YANGLING

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "artifacts"
README_SHOT = REPO / "docs" / "screenshot-chat.png"
FILES_SHOT = REPO / "docs" / "screenshot-files.png"
TECH = "秦创原到2026年技术合同成交额要达到多少？"
QCY_TITLE = "秦创原创新驱动平台建设三年行动计划（2024—2026年）"
ANSWER_WAIT = 60_000  # ms; generous: the first question on a cold CI machine

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's Chromium: apt-get install chromium fonts-noto-cjk (.ci/run installs both)",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_command() -> list[str]:
    script = Path(sys.executable).parent / "policy-rag"
    return [str(script)] if script.exists() else [sys.executable, "-m", "rag.cli"]


@pytest.fixture()
def server(seed_index_copy, tmp_path):
    """`policy-rag serve` on a free port of 127.0.0.1 over a private copy of the seed index; stopped by PID."""
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    env = os.environ | {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1",
                        "GRADIO_TEMP_DIR": str(tmp_path / "gradio"), "POLICY_RAG_AUTH": ""}
    proc = subprocess.Popen([*serve_command(), "serve", "--port", str(port), "--data-dir", str(seed_index_copy)],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail("policy-rag serve exited:\n" + (tmp_path / "serve.log").read_text())
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("policy-rag serve did not answer in 90 s:\n" + (tmp_path / "serve.log").read_text())
            time.sleep(0.3)
        yield url, seed_index_copy
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.fixture(params=["zh-CN"])
def browser_page(server, request):
    from playwright.sync_api import sync_playwright

    url, _ = server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run",
        ])
        context = browser.new_context(viewport={"width": 1440, "height": 1000}, locale=request.param,
                                      accept_downloads=True)
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=url.rstrip("/"))
        page = context.new_page()
        page.set_default_timeout(30_000)
        try:
            yield page
        finally:
            browser.close()


def screenshot(page, path: Path) -> None:
    """The page from the top, once the scroll to a clicked source has finished, as a PNG."""
    page.wait_for_function("!document.querySelector('.src-card.flash')")
    page.evaluate("window.scrollTo({top: 0, behavior: 'instant'})")
    page.wait_for_function("window.scrollY < 8")
    page.screenshot(path=str(path))


def ask(page, question: str) -> None:
    page.locator("#question textarea").fill(question)
    page.locator("#question textarea").press("Enter")


def test_chat_sources_memo_feedback_and_upload_in_a_browser(server, browser_page, tmp_path):
    from playwright.sync_api import expect

    url, data_dir = server
    page = browser_page
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith((url, "data:", "blob:")) else None)
    page.goto(url, wait_until="load")
    expect(page).to_have_title("政策文件问答助手")

    # ask: the answer streams in with the figure and the clause label
    ask(page, TECH)
    chat = page.locator("#chat")
    expect(chat).to_contain_text("6000亿元", timeout=ANSWER_WAIT)
    expect(chat).to_contain_text(f"《{QCY_TITLE}》二、（一）3.")

    # open the source: [1] scrolls to the card; the whole clause is there with the quote marked
    chat.locator("a.cite-ref").first.click()
    card = page.locator("#src-1-1")
    expect(card).to_be_in_viewport()
    expect(card.locator("mark")).to_contain_text("技术合同成交额突破6000亿元")
    expect(card).to_contain_text("畅通成果转化链条")
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot(page, ARTIFACTS / "ui-chat.png")
    if os.environ.get("POLICY_RAG_UPDATE_SCREENSHOT") == "1":
        README_SHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(ARTIFACTS / "ui-chat.png", README_SHOT)

    # 复制引用 copies the memo string
    card.locator("button.copy-memo").click()
    expect(card.locator("button.copy-memo")).to_have_text("已复制 ✓")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith(f"《{QCY_TITLE}》二、（一）3.：“") and "6000亿元" in copied

    # 赞 (👍) with a comment: one JSON line under the data dir
    page.locator("#comment textarea").fill("引用准确")
    chat.get_by_role("button", name=re.compile("^(赞|Like)$")).first.click()
    expect(page.locator("#feedback-note")).to_contain_text("已记录“赞”和您的意见")
    feedback = [json.loads(x) for x in (data_dir / "feedback.jsonl").read_text(encoding="utf-8").splitlines()]
    assert feedback[-1]["rating"] == "up" and feedback[-1]["comment"] == "引用准确"
    assert feedback[-1]["citations"][0]["label"] == "二、（一）3."

    # 导出备忘录: download the .docx and read it back
    page.locator("#export").click()
    docx_link = page.locator("#memo-files a[download$='.docx']")
    expect(docx_link).to_be_visible()
    with page.expect_download() as download:
        docx_link.click()
    memo = tmp_path / "memo.docx"
    download.value.save_as(memo)
    paragraphs = [p.text for p in DocxDocument(str(memo)).paragraphs]
    assert paragraphs[0] == "政策问答备忘录"
    assert any("6000亿元" in p for p in paragraphs) and f"[1] 《{QCY_TITLE}》二、（一）3." in paragraphs

    # upload a GB18030 .txt (and a fake .pdf), then ask about the new document
    upload = tmp_path / "upload"
    upload.mkdir()
    (upload / "杨凌种业措施.txt").write_bytes(YANGLING.encode("gb18030"))
    (upload / "fake.pdf").write_text("not a pdf")
    page.get_by_role("tab", name="文件").click()
    expect(page.locator("#doc-summary")).to_contain_text("共 2 份文件")
    page.locator("#upload input[type=file]").set_input_files([str(upload / "杨凌种业措施.txt"),
                                                             str(upload / "fake.pdf")])
    expect(page.locator("#upload tr.file")).to_have_count(2)  # both uploaded to the server
    page.locator("#add-files").click()
    report = page.locator("#upload-report")
    expect(report).to_contain_text("已加入", timeout=ANSWER_WAIT)
    expect(report).to_contain_text("不是 PDF")
    expect(page.locator("#doc-table")).to_contain_text("杨凌示范区支持种业创新的若干措施")
    expect(page.locator("#doc-summary")).to_contain_text("共 3 份文件")
    page.get_by_role("tab", name="问答").click()
    ask(page, "杨凌对新认定的国家级种业创新平台奖励多少？")
    expect(chat).to_contain_text("500万元", timeout=ANSWER_WAIT)
    expect(chat).to_contain_text("《杨凌示范区支持种业创新的若干措施》")
    screenshot(page, ARTIFACTS / "ui-upload-answer.png")

    # a follow-up is answered in the context of the previous question
    ask(page, "秦创原对科技金融有什么支持？")
    expect(page.locator("#turn-3")).to_be_visible(timeout=ANSWER_WAIT)
    ask(page, "那山西呢？")
    expect(chat).to_contain_text("按「山西对科技金融有什么支持？」理解", timeout=ANSWER_WAIT)
    expect(page.locator("#turn-4")).to_contain_text("第4问：山西对科技金融有什么支持？")

    assert not outside, f"the page fetched from outside the app: {outside}"


def choose(page, dropdown: str, option: str) -> None:
    """Pick `option` in the Gradio dropdown with elem_id `dropdown`."""
    page.locator(f"#{dropdown} input").click()
    page.get_by_role("option", name=option).first.click()


@pytest.mark.parametrize("browser_page", ["en-US"], indirect=True)
def test_files_tab_table_new_version_in_force_and_remove_in_an_english_browser(server, browser_page, tmp_path):
    """An en-US browser still sees every label in Chinese, Gradio's own upload text included."""
    from playwright.sync_api import expect

    url, data_dir = server
    page = browser_page
    page.goto(url, wait_until="load")
    page.get_by_role("tab", name="文件").click()
    upload_box = page.locator("#upload")
    expect(upload_box).to_contain_text("将文件拖放到此处")
    expect(upload_box).to_contain_text("点击上传")
    assert "Drop" not in upload_box.inner_text() and "Click" not in upload_box.inner_text()
    table = page.locator("#doc-table")
    expect(table).to_contain_text("状态")
    expect(table).to_contain_text("现行有效")

    # upload a document, then its new version replacing it
    folder = tmp_path / "upload"
    folder.mkdir()
    old, new = folder / "杨凌种业措施.txt", folder / "杨凌种业措施（修订）.txt"
    old.write_text(YANGLING, encoding="utf-8")
    new.write_text(YANGLING.replace("500万元", "800万元"), encoding="utf-8")
    page.locator("#upload input[type=file]").set_input_files([str(old)])
    expect(page.locator("#upload tr.file")).to_have_count(1)
    page.locator("#add-files").click()
    expect(page.locator("#upload-report")).to_contain_text("已加入", timeout=ANSWER_WAIT)
    expect(page.locator("#doc-summary")).to_contain_text("共 3 份文件")
    page.locator("#upload input[type=file]").set_input_files([str(new)])
    expect(page.locator("#upload tr.file")).to_have_count(1)
    choose(page, "replaces", "杨凌示范区支持种业创新的若干措施")
    page.locator("#add-files").click()
    expect(page.locator("#upload-report")).to_contain_text("已被《杨凌示范区支持种业创新的若干措施》替代",
                                                           timeout=ANSWER_WAIT)
    expect(table).to_contain_text("已被废止或替代（被《杨凌示范区支持种业创新的若干措施》替代）")

    # the status filter
    choose(page, "by-status", "已被废止或替代")
    expect(page.locator("#doc-summary")).to_contain_text("当前筛选显示 1 份")
    expect(table).not_to_contain_text("关于加快构建山西省创新生态的指导意见")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui-files.png"))
    if os.environ.get("POLICY_RAG_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(ARTIFACTS / "ui-files.png", FILES_SHOT)
    choose(page, "by-status", "全部状态")
    expect(page.locator("#doc-summary")).not_to_contain_text("当前筛选")
    expect(table).to_contain_text("关于加快构建山西省创新生态的指导意见")

    # in force only: the answer comes from the new version
    page.get_by_role("tab", name="问答").click()
    page.locator("#in-force input").check()
    ask(page, "杨凌对新认定的国家级种业创新平台奖励多少？")
    chat = page.locator("#chat")
    expect(chat).to_contain_text("800万元", timeout=ANSWER_WAIT)
    assert "500万元" not in chat.inner_text()

    # remove the old version: pick its row, 删除, 确认删除
    page.get_by_role("tab", name="文件").click()
    table.get_by_text("已被废止或替代（被").locator("visible=true").first.click()
    expect(page.locator("#target input")).to_have_value(re.compile("杨凌示范区支持种业创新的若干措施"))
    page.locator("#remove").click()
    expect(page.locator("#confirm-note")).to_contain_text("确定从文件库删除《杨凌示范区支持种业创新的若干措施》吗")
    page.locator("#confirm-remove").click()
    expect(page.locator("#manage-note")).to_contain_text("已删除", timeout=ANSWER_WAIT)
    expect(page.locator("#doc-summary")).to_contain_text("共 3 份文件")
    expect(table).not_to_contain_text("已被废止或替代")
    assert [p.name for p in (data_dir / "uploads").iterdir()] == ["杨凌种业措施（修订）.txt"]
