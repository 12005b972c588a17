"""The Gradio app: layout and wiring only (the one module that imports gradio).

Every handler is glue: call the library (`Assistant.ask_stream`, `ingest`), render with `ui.render`, return.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import weakref
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import gradio as gr

from rag.assistant import Assistant
from rag.config import Settings
from rag.errors import PolicyRagError
from rag.records import Answer
from rag.validity import statuses
from ui import documents as doc_table
from ui import followup, manage, openai_api, render
from ui.feedback import append_feedback, feedback_record
from ui.locale import chinese
from ui.upload import ALLOWED, ingest_uploads

log = logging.getLogger("policy_rag.ui")

TITLE = "政策文件问答助手"
CONCURRENCY = 4  # questions answered at once; the rest wait in Gradio's queue
# System fonts only: nothing is fetched from the internet (a GoogleFont would be).
FONTS = ["Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", "sans-serif"]
MONO_FONTS = ["Noto Sans Mono CJK SC", "DejaVu Sans Mono", "monospace"]
EXAMPLES = ["秦创原到2026年技术合同成交额要达到多少？", "秦创原对科技金融有什么支持？", "山西省对中试基地建设有哪些支持措施？"]

CSS = """
#app-header h1 { margin-bottom: 0; }
#sources { max-height: 78vh; overflow-y: auto; padding-right: 4px; }
.src-empty { color: var(--body-text-color-subdued); padding: 1em 0; }
.src-turn { margin-bottom: 1.2em; }
.src-q { font-size: 1em; margin: .6em 0 .4em; color: var(--body-text-color-subdued); }
.src-card { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: .6em .8em; margin: .5em 0;
            background: var(--background-fill-secondary); scroll-margin-top: 8px; transition: box-shadow .3s; }
.src-card.flash { box-shadow: 0 0 0 3px var(--color-accent); }
.src-head { font-weight: 600; }
.src-n { color: var(--color-accent); margin-right: .3em; }
.src-label { margin-left: .3em; color: var(--color-accent); }
.src-meta { font-size: .85em; color: var(--body-text-color-subdued); margin: .2em 0 .4em; }
.src-text { white-space: pre-wrap; line-height: 1.7; }
.src-text mark { background: #fde68a; color: inherit; padding: 0 1px; }
.src-table { border-collapse: collapse; white-space: normal; font-size: .92em; margin: .3em 0; }
.src-table th, .src-table td { border: 1px solid var(--border-color-primary); padding: .15em .4em; }
.src-ocr { color: #b45309; }
.src-flags, .src-flag { color: #b45309; background: #fffbeb; border-left: 3px solid #f59e0b; padding: .3em .6em; margin: .4em 0; }
.src-flags ul { margin: .2em 0 0 1.2em; }
.src-abstain { color: var(--body-text-color-subdued); margin: .4em 0; }
.src-actions { margin-top: .4em; text-align: right; }
.copy-memo { border: 1px solid var(--border-color-primary); border-radius: 6px; padding: 2px 10px; cursor: pointer;
             background: var(--background-fill-primary); font-size: .9em; }
.copy-memo:hover { border-color: var(--color-accent); }
a.cite-ref { text-decoration: none; font-weight: 600; color: var(--color-accent); }
.unsupported { color: #b45309; font-size: .9em; }
"""

# Document-level listeners: [n] scrolls to its source card; 复制引用 copies the memo string
# (navigator.clipboard needs https or localhost; execCommand covers http://server:7860 on the LAN).
HEAD = """<script>
(() => {
  async function copyText(text) {
    try { await navigator.clipboard.writeText(text); return true; } catch (e) {}
    const ta = document.createElement('textarea');
    ta.value = text; ta.style.position = 'fixed'; ta.style.opacity = '0';
    document.body.appendChild(ta); ta.select();
    let ok = false; try { ok = document.execCommand('copy'); } catch (e) {}
    ta.remove(); return ok;
  }
  document.addEventListener('click', async (event) => {
    const link = event.target.closest('a.cite-ref');
    if (link) {
      const card = document.getElementById(link.getAttribute('href').slice(1));
      if (card) {
        event.preventDefault();
        card.scrollIntoView({behavior: 'smooth', block: 'start'});
        card.classList.add('flash'); setTimeout(() => card.classList.remove('flash'), 1600);
      }
      return;
    }
    const button = event.target.closest('button.copy-memo');
    if (button) {
      const ok = await copyText(button.dataset.memo);
      const label = button.textContent;
      button.textContent = ok ? '已复制 ✓' : '复制失败，请手动选择原文';
      setTimeout(() => { button.textContent = label; }, 1500);
    }
  });
})();
</script>"""


class AppState:
    """The server's one warm Assistant; an upload swaps in a fresh one that sees the new index."""

    def __init__(self, settings: Settings, assistant: Assistant | None = None) -> None:
        self.settings = settings
        self.assistant = assistant or Assistant(settings)
        self.memo_dir = Path(tempfile.mkdtemp(prefix="policy-rag-memo-"))  # Gradio serves copies from its cache
        weakref.finalize(self, shutil.rmtree, self.memo_dir, ignore_errors=True)  # on exit or when dropped

    def warm(self) -> None:
        """Load the embedder, jieba, the index and BM25 now, not on the first question."""
        try:
            self.assistant.search("预热", k=1)
        except PolicyRagError as err:  # no index yet: the app still serves uploads
            log.warning("还没有索引（可在「文件」页上传文件）：%s", err)
            self.assistant.embedder.embed_query("预热")

    def reload(self) -> None:
        self.assistant = Assistant(self.settings, embedder=self.assistant.embedder)
        self.warm()

    def documents(self) -> dict[str, dict]:
        try:
            self.assistant.refresh()
            return self.assistant.index.manifest.documents
        except PolicyRagError:
            return {}


class Handlers:
    """Event handlers: call the library, render, return. Gradio values in, Gradio updates out."""

    def __init__(self, state: AppState) -> None:
        self.state = state

    def ask(self, asked: str, history: list, past: list, chosen: list | None, in_force: bool = False):
        """Stream one answer into the chat; a follow-up is read in the light of the previous question.

        `chosen` limits the search to those documents, `in_force` to documents 现行有效 today."""
        asked = (asked or "").strip()
        if not asked:
            yield history, gr.skip(), past, ""
            return
        previous = next((t.question for t in reversed(past) if t.answer is not None), None)
        titles = [e.get("title", "") for e in self.state.documents().values()]
        question = followup.standalone(asked, previous, titles)
        history = history + [{"role": "user", "content": render.escape_md(asked)},
                             {"role": "assistant", "content": render.pending_markdown()}]
        yield history, gr.skip(), past, ""
        answer, written = None, ""
        try:
            for part in self.state.assistant.ask_stream(question, doc=chosen or None, in_force=bool(in_force)):
                if isinstance(part, Answer):
                    answer = part
                else:
                    written += part
                    reply = {"role": "assistant", "content": render.streaming_markdown(written)}
                    history = history[:-1] + [reply]
                    yield history, gr.skip(), past, ""
        except PolicyRagError as err:
            turn = render.Turn(asked, question, error=render.error_markdown(err))
            history = history[:-1] + [{"role": "assistant", "content": turn.error}]
            yield history, gr.skip(), past + [turn], ""
            return
        past = past + [render.Turn(asked, question, answer, docs=tuple(chosen or ()))]
        history = history[:-1] + [{"role": "assistant", "content": render.answer_markdown(past[-1], len(past))}]
        yield history, render.sources_html(past), past, ""

    def clear(self):
        return [], render.sources_html([]), [], gr.File(value=None, visible=False), ""

    def export(self, past: list):
        """Write the memo as .docx and .md and offer both for download."""
        answered = [t for t in past if t.answer is not None]
        if not answered:
            gr.Warning("还没有可导出的回答。")
            return gr.File(visible=False)
        folder = Path(tempfile.mkdtemp(dir=self.state.memo_dir))  # one per export: users never clash
        stem = f"{render.MEMO_TITLE}-{datetime.now():%Y%m%d-%H%M}"
        docx_path, md_path = folder / f"{stem}.docx", folder / f"{stem}.md"
        docx_path.write_bytes(render.memo_docx(answered))
        md_path.write_text(render.memo_markdown(answered), encoding="utf-8")
        return gr.File(value=[str(docx_path), str(md_path)], visible=True, file_count="multiple")

    def like(self, past: list, note: str, like: gr.LikeData):
        """👍/👎 on an answer: one JSON line with the comment typed so far."""
        index = like.index[0] if isinstance(like.index, (list, tuple)) else like.index
        turn = past[index // 2] if 0 <= index // 2 < len(past) else None  # two messages per turn
        if turn is None or turn.answer is None or like.liked not in (True, False):
            return gr.skip(), gr.skip()
        record = feedback_record(turn, like.liked, note or "")
        path = append_feedback(self.state.settings.data_dir, record)
        log.info("feedback → %s", path)
        rating = "赞" if like.liked else "踩"
        return f"已记录“{rating}”{'和您的意见' if record['comment'] else ''}，谢谢！", ""

    def add_files(self, files: list | None, replaces: str | None = None, state: str = doc_table.ALL,
                  issuer: str = doc_table.ALL, year: str = doc_table.ALL, progress=gr.Progress()):  # noqa: B008 (Gradio injects it so)
        """Store, check and ingest uploads; report each file; mark the document a new version replaces; refresh
        the document table and pickers."""
        if not files:
            raise gr.Error("请先选择要上传的文件。")
        if replaces and len(files) != 1:
            raise gr.Error("替代已有文件时，请只上传一份文件（它的新版本）。")
        progress(0, desc="正在读取文件…")

        def step(done: int, total: int) -> None:
            progress((done, total), desc="正在建立索引", unit="个文件")

        def page(file: str, done: int, total: int) -> None:  # a scan: OCR takes seconds a page
            progress((done, total), desc=f"正在识别扫描件 {Path(file).name}", unit="页")

        settings = self.state.settings
        try:
            rows = ingest_uploads(settings, files, embedder=self.state.assistant.embedder, progress=step,
                                  pages=page)
            report = render.ingest_markdown(rows)
            new = list(dict.fromkeys(r.doc_id for r in rows if r.status in ("added", "updated", "unchanged")))
            if replaces and len(new) == 1:
                manage.mark_replaced(settings, new[0], replaces)
                titles = {r.doc_id: r.title for r in rows}
                report += f"\n\n已标记：原文件 {render.escape_md(replaces)} 已被《{render.escape_md(titles[new[0]] or new[0])}》替代。"
            elif replaces:
                report += "\n\n未标记替代：上传的文件没有成功加入，或含有不止一份文件。"
        except PolicyRagError as err:
            raise gr.Error(str(err)) from None
        finally:
            self.state.reload()
        return (report, *self.documents(state, issuer, year), None)

    def documents(self, state: str = doc_table.ALL, issuer: str = doc_table.ALL, year: str = doc_table.ALL):
        """The document table (filtered), its filters' choices, and every document picker, from the index."""
        documents = self.state.documents()
        found = statuses(documents)
        filters = doc_table.filter_choices(documents)
        choices = doc_table.choices(documents, found)
        return (*self.table(state, issuer, year, documents, found),
                *(gr.Dropdown(choices=c, value=v if v in {x for _, x in c} else doc_table.ALL)
                  for c, v in zip(filters, (state, issuer, year), strict=True)),
                gr.Dropdown(choices=choices), gr.Dropdown(choices=choices, value=None),
                gr.Dropdown(choices=choices, value=None))

    def table(self, state: str = doc_table.ALL, issuer: str = doc_table.ALL, year: str = doc_table.ALL,
              documents=None, found=None):
        """The summary line and the rows that pass the filters."""
        documents = self.state.documents() if documents is None else documents
        found = statuses(documents) if found is None else found
        rows = doc_table.rows(documents, found, state, issuer, year)
        return doc_table.summary(documents, len(rows)), gr.Dataframe(value=rows or None, headers=doc_table.HEADERS)

    def pick(self, event: gr.SelectData):
        """A click on a table row picks that document for 删除."""
        row = event.row_value or []
        return gr.Dropdown(value=row[-1]) if row else gr.skip()

    def confirm_remove(self, doc_id: str | None):
        """删除 asks first: show what will go, with 确认删除 and 取消."""
        if not doc_id:
            raise gr.Error("请先在表格中点选，或在下拉框中选择要删除的文件。")
        title = self.state.documents().get(doc_id, {}).get("title") or doc_id
        note = (f"确定从文件库删除《{render.escape_md(title)}》吗？删除后问答不再引用它；原文件移到数据目录的 "
                "removed/ 文件夹（移回并重新导入即可恢复）。")
        return gr.Row(visible=True), note

    def remove(self, doc_id: str | None, state: str = doc_table.ALL, issuer: str = doc_table.ALL,
               year: str = doc_table.ALL):
        """Remove the picked document from the index (under the ingest lock) and move its file aside."""
        if not doc_id:
            raise gr.Error("请先选择要删除的文件。")
        try:
            removed = manage.remove_document(self.state.settings, doc_id, embedder=self.state.assistant.embedder)
        except PolicyRagError as err:
            raise gr.Error(str(err)) from None
        finally:
            self.state.reload()
        where = f"原文件已移到 {render.escape_md(str(removed.moved_to))}" if removed.moved_to else \
            "没有找到原文件（若它在文件夹中，下次导入该文件夹会重新收录）"
        note = f"已删除《{render.escape_md(removed.title)}》。{where}。"
        return (gr.Row(visible=False), note, *self.documents(state, issuer, year))


def layout() -> SimpleNamespace:
    """The components, by name: a chat tab (chat, filter, memo, feedback, sources) and a files tab."""
    ui = SimpleNamespace(turns=gr.State([]))
    gr.Markdown(f"# {TITLE}\n回答只引自已收录的政策原文，并标注到具体条款；点击回答中的 [1] 查看原文。",
                elem_id="app-header")
    with gr.Tabs():
        with gr.Tab("问答", id="chat"), gr.Row(equal_height=False):
            with gr.Column(scale=3):
                ui.chatbot = gr.Chatbot(label="对话", height=520, latex_delimiters=[], elem_id="chat",
                                        feedback_options=("Like", "Dislike"), buttons=["copy"],
                                        placeholder="请在下方输入关于政策文件的问题。")
                with gr.Row():
                    ui.question = gr.Textbox(show_label=False, scale=5, max_lines=4, elem_id="question",
                                             placeholder="输入问题，例如：" + EXAMPLES[0])
                    ui.ask = gr.Button("提问", variant="primary", scale=1, min_width=80, elem_id="ask")
                gr.Examples(EXAMPLES, inputs=ui.question, label="示例问题")
                with gr.Row(equal_height=False):
                    with gr.Column(scale=4):
                        ui.docs = gr.Dropdown(label="只在这些文件中查找（不选则查全部文件）", multiselect=True,
                                              choices=[], elem_id="doc-filter")
                        ui.in_force = gr.Checkbox(label="只查现行有效的文件", value=False, elem_id="in-force")
                    with gr.Column(scale=1, min_width=120):
                        ui.clear = gr.Button("新对话", size="md")
                        ui.export = gr.Button("导出备忘录", size="md", elem_id="export")
                ui.memo_files = gr.File(label="备忘录下载（.docx / .md）", visible=False, elem_id="memo-files")
                with gr.Row(equal_height=True):
                    ui.comment = gr.Textbox(show_label=False, scale=3, elem_id="comment",
                                            placeholder="对回答的意见（可选）：写好后点回答下方的“赞”或“踩”")
                    ui.feedback_note = gr.Markdown(elem_id="feedback-note")
            with gr.Column(scale=2):
                gr.Markdown("### 引用来源")
                ui.sources = gr.HTML(render.sources_html([]), elem_id="sources")
        with gr.Tab("文件", id="files"), gr.Row(equal_height=False):
            with gr.Column(scale=2):
                ui.uploads = gr.File(label="上传政策文件（.pdf .txt .docx .html .md）", file_count="multiple",
                                     file_types=list(ALLOWED), elem_id="upload")
                ui.replaces = gr.Dropdown(label="替代已有文件（可选：上传的是它的新版本时选择）", choices=[],
                                          value=None, elem_id="replaces")
                ui.add = gr.Button("加入文件库", variant="primary", elem_id="add-files")
                ui.report = gr.Markdown(elem_id="upload-report")
            with gr.Column(scale=5):
                gr.Markdown("### 已收录的文件")
                ui.doc_summary = gr.Markdown(elem_id="doc-summary")
                with gr.Row():
                    ui.by_status, ui.by_issuer, ui.by_year = (
                        gr.Dropdown(label=label, choices=[(f"全部{label}", doc_table.ALL)], value=doc_table.ALL,
                                    elem_id=elem_id)
                        for label, elem_id in (("状态", "by-status"), ("发文机关", "by-issuer"), ("年份", "by-year")))
                ui.doc_table = gr.Dataframe(headers=doc_table.HEADERS, interactive=False, wrap=True, max_height=560,
                                            column_widths=["26%", "11%", "11%", "8%", "8%", "8%", "14%", "6%", "8%"],
                                            label="点击列名排序；点击一行选中该文件", elem_id="doc-table")
                with gr.Row(equal_height=True):
                    ui.target = gr.Dropdown(label="选中的文件", choices=[], value=None, scale=4, elem_id="target")
                    ui.remove = gr.Button("删除", variant="stop", scale=1, min_width=80, elem_id="remove")
                with gr.Row(visible=False, elem_id="confirm-row") as ui.confirm_row:
                    ui.confirm_note = gr.Markdown(elem_id="confirm-note")
                    ui.confirm = gr.Button("确认删除", variant="stop", min_width=80, elem_id="confirm-remove")
                    ui.cancel = gr.Button("取消", min_width=80, elem_id="cancel-remove")
                ui.manage_note = gr.Markdown(elem_id="manage-note")
    return ui


def build_app(state: AppState) -> gr.Blocks:
    """The layout wired to the handlers."""
    handlers = Handlers(state)
    # delete_cache: Gradio's copies of uploads and memos older than a day go, checked hourly
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(3600, 86400)) as demo:
        ui = layout()
        ask_in = [ui.question, ui.chatbot, ui.turns, ui.docs, ui.in_force]
        ask_out = [ui.chatbot, ui.sources, ui.turns, ui.question]
        ui.question.submit(handlers.ask, ask_in, ask_out, api_name="ask")
        ui.ask.click(handlers.ask, ask_in, ask_out, api_name=False)
        for event in (ui.clear.click, ui.chatbot.clear):  # the chat's own 🗑 must reset the turns too
            event(handlers.clear, None, [ui.chatbot, ui.sources, ui.turns, ui.memo_files, ui.feedback_note],
                  api_name=False)
        ui.export.click(handlers.export, ui.turns, ui.memo_files, api_name="export_memo")
        ui.chatbot.like(handlers.like, [ui.turns, ui.comment], [ui.feedback_note, ui.comment], api_name=False)
        filters = [ui.by_status, ui.by_issuer, ui.by_year]
        listing = [ui.doc_summary, ui.doc_table, *filters, ui.docs, ui.target, ui.replaces]
        ui.add.click(handlers.add_files, [ui.uploads, ui.replaces, *filters], [ui.report, *listing, ui.uploads],
                     api_name="upload", concurrency_limit=1, concurrency_id="ingest")
        for f in filters:
            f.input(handlers.table, filters, [ui.doc_summary, ui.doc_table], api_name=False)
        ui.doc_table.select(handlers.pick, None, ui.target, api_name=False)
        ui.remove.click(handlers.confirm_remove, ui.target, [ui.confirm_row, ui.confirm_note], api_name=False)
        ui.cancel.click(lambda: gr.Row(visible=False), None, ui.confirm_row, api_name=False)
        ui.confirm.click(handlers.remove, [ui.target, *filters], [ui.confirm_row, ui.manage_note, *listing],
                         api_name=False, concurrency_limit=1, concurrency_id="ingest")
        demo.load(handlers.documents, None, listing, api_name=False)
    return demo


def theme() -> gr.themes.Base:
    return gr.themes.Default(primary_hue="red", neutral_hue="slate", font=FONTS, font_mono=MONO_FONTS)


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 7860,
          auth: tuple[str, str] | None = None) -> None:
    """Warm the assistant, then serve the app until interrupted."""
    state = AppState(settings)
    state.warm()
    demo = build_app(state)
    demo.queue(default_concurrency_limit=CONCURRENCY)
    app, _, _ = demo.launch(
        server_name=host, server_port=port, auth=auth, auth_message=f"{TITLE}：请登录" if auth else None,
        theme=theme(), css=CSS, head=HEAD, i18n=chinese(), footer_links=[], show_error=False, quiet=False,
        max_file_size=f"{settings.max_file_mb:g}mb", prevent_thread_lock=True,
    )
    # the OpenAI-compatible API on the same server and login (ui/openai_api.py); the assistant is looked up per
    # request, since an upload swaps in a new one
    openai_api.add_routes(app, lambda question: state.assistant.ask(question), auth)
    demo.block_thread()
