"""Security: uploads stay in the data dir, Gradio serves only its own files, login, loopback, no API key leaks.

The live tests run one `policy-rag serve` (login on, LLM answerer on a local OpenAI-compatible server that,
when told to, refuses the key with an error message quoting it, as some gateways do).
"""

from __future__ import annotations

import json
import logging
import shutil
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from rag.assistant import Assistant
from rag.cli import main
from rag.config import Settings
from rag.errors import LLMError
from ui.upload import store, uploads_dir

from .conftest import REPO
from .load_chat import ask_once, free_port, start_server, stop_server

SECRET = "sk-test-Zq81-do-not-leak"
LOGIN = ("staff", "s3cret-pw")
QUESTION = "秦创原到2026年技术合同成交额要达到多少？"


class GatewayLLM:
    """An OpenAI-compatible chat endpoint: streams a cited answer, or (refuse=True) a 401 quoting the key."""

    def __init__(self) -> None:
        self.refuse = False
        self.requests: list[dict] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                gateway.requests.append(body)
                if gateway.refuse:
                    data = json.dumps({"error": {"message": f"invalid key {self.headers.get('Authorization')}",
                                                 "type": "invalid_request_error", "code": "invalid_api_key"}}).encode()
                    self.send_response(401)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for piece in ("全省技术合同成交额", "突破6000亿元[1]。"):
                    chunk = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": body["model"],
                             "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
                    self.wfile.write(f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode())
                self.wfile.write(b"data: [DONE]\n\n")

        return Handler


@pytest.fixture()
def gateway():
    llm = GatewayLLM()
    yield llm
    llm.close()


def llm_settings(data_dir: Path, gateway: GatewayLLM) -> Settings:
    return Settings(data_dir=data_dir, answerer="llm", llm_base_url=gateway.url, llm_model="m",
                    llm_api_key=SECRET, embed_api_key=SECRET)


# ---- API keys -----------------------------------------------------------------------------------------

def test_settings_never_show_api_keys():
    settings = Settings(llm_api_key=SECRET, embed_api_key=SECRET)
    assert SECRET not in repr(settings) and SECRET not in str(settings)


def test_a_refused_key_is_a_clear_error_that_does_not_quote_it(seed_index_dir, embedder, gateway, caplog):
    gateway.refuse = True
    caplog.set_level(logging.DEBUG)
    assistant = Assistant(llm_settings(seed_index_dir, gateway), embedder=embedder)
    with pytest.raises(LLMError) as raised:
        assistant.ask(QUESTION)
    message = str(raised.value)
    assert gateway.url in message and "POLICY_RAG_LLM_API_KEY" in message and SECRET not in message
    assert raised.value.__suppress_context__  # a traceback does not show the endpoint's own text either
    assert SECRET not in caplog.text


def test_cli_ask_with_a_refused_key_prints_no_key(seed_index_dir, gateway, monkeypatch):
    gateway.refuse = True
    monkeypatch.setenv("POLICY_RAG_LLM_API_KEY", SECRET)
    monkeypatch.setenv("POLICY_RAG_LLM_BASE_URL", gateway.url)
    result = CliRunner().invoke(main, ["ask", QUESTION, "--answerer", "llm", "--data-dir", str(seed_index_dir)])
    assert result.exit_code == 1 and "refused the API key" in result.output
    assert SECRET not in result.output


def test_ui_shows_a_refused_key_without_quoting_it(seed_index_dir, embedder, gateway):
    from ui.app import AppState, Handlers

    gateway.refuse = True
    settings = llm_settings(seed_index_dir, gateway)
    handlers = Handlers(AppState(settings, Assistant(settings, embedder=embedder)))
    *_, (history, _sources, _turns, _box) = list(handlers.ask(QUESTION, [], [], None))
    assert "refused the API key" in history[-1]["content"] and SECRET not in json.dumps(history, ensure_ascii=False)


def test_answers_and_memo_exports_hold_no_key(seed_index_dir, embedder, gateway):
    from ui import render
    from ui.app import AppState, Handlers

    settings = llm_settings(seed_index_dir, gateway)
    handlers = Handlers(AppState(settings, Assistant(settings, embedder=embedder)))
    *_, (history, sources, turns, _box) = list(handlers.ask(QUESTION, [], [], None))
    assert "6000亿元" in history[-1]["content"]
    answered = [t for t in turns if t.answer is not None]
    exported = render.memo_markdown(answered) + render.memo_docx(answered).decode("latin-1")
    assert SECRET not in exported + sources + json.dumps(history, ensure_ascii=False)


# ---- uploads ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["..\\..\\x.txt", "..%2F..%2Fx.txt", ".hidden.txt", "x.txt\u202egnp.exe.txt"])
def test_uploads_are_stored_inside_the_uploads_folder_under_safe_names(tmp_path, name):
    source = tmp_path / "in" / name
    source.parent.mkdir()
    source.write_text("一、总体要求\n加快构建创新生态。", encoding="utf-8")
    settings = Settings(data_dir=tmp_path / "data")
    stored, rejected = store(settings, [source])
    assert not rejected and len(stored) == 1
    target = stored[0]
    assert target.parent == uploads_dir(settings) and target.resolve().is_relative_to(settings.data_dir.resolve())
    assert not target.name.startswith(".") and "/" not in target.name and "\\" not in target.name
    assert {p.name for p in (tmp_path / "data").rglob("*") if p.is_file()} == {target.name}


# ---- the live server ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def live(seed_index_dir, tmp_path_factory):
    """`policy-rag serve` with login on and the LLM answerer, over a private copy of the seed index."""
    data = tmp_path_factory.mktemp("live") / "data"
    shutil.copytree(seed_index_dir, data)
    llm = GatewayLLM()
    port = free_port()
    env = {"POLICY_RAG_AUTH": ":".join(LOGIN), "POLICY_RAG_ANSWERER": "llm", "POLICY_RAG_LLM_BASE_URL": llm.url,
           "POLICY_RAG_LLM_API_KEY": SECRET, "POLICY_RAG_LLM_MODEL": "m"}
    server = start_server(data, port, env)
    state = SimpleNamespace(url=f"http://127.0.0.1:{port}/", port=port, data=data, llm=llm, output="")
    yield state
    state.output = stop_server(server)
    llm.close()
    assert SECRET not in state.output, "the server printed the API key"


def _client(url: str, auth=LOGIN):
    from gradio_client import Client

    return Client(url, auth=auth, verbose=False)


def _status(url: str, opener=None) -> int:
    try:
        with (opener or urllib.request.build_opener()).open(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_login_is_required_and_works(live):
    assert _status(live.url + "config") in (401, 403)
    with pytest.raises(Exception):  # noqa: B017 (gradio_client raises a bare ValueError or an HTTP error)
        _client(live.url, auth=None).predict(QUESTION, [], [], api_name="/ask")
    with pytest.raises(Exception):  # noqa: B017
        _client(live.url, auth=(LOGIN[0], "wrong"))
    live.llm.refuse = False
    assert "6000亿元" in ask_once(_client(live.url), QUESTION)


def test_a_refused_key_reaches_the_chat_as_a_message_without_the_key(live):
    live.llm.refuse = True
    try:
        text = ask_once(_client(live.url), QUESTION)
    finally:
        live.llm.refuse = False
    assert "refused the API key" in text and SECRET not in text


def test_gradio_serves_none_of_the_data_dir_or_the_repository(live):
    upload = live.data / "uploads" / "x.txt"
    upload.parent.mkdir(exist_ok=True)
    upload.write_text("一、内部文件", encoding="utf-8")
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    login = urllib.parse.urlencode({"username": LOGIN[0], "password": LOGIN[1]}).encode()
    browser.open(live.url + "login", data=login, timeout=10)  # logged in: the file route must refuse even so
    assert _status(live.url + "config", browser) == 200
    for path in (live.data / "manifest.json", live.data / "clauses.sqlite", upload, REPO / "pyproject.toml",
                 Path("/etc/passwd")):
        status = _status(f"{live.url}gradio_api/file={path}", browser)
        assert status in (403, 404), f"{path} served with {status}"


def test_server_binds_loopback_only(live):
    hosts = {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
    outside = [h for h in hosts if not h.startswith("127.")]
    for host in outside:
        with pytest.raises(OSError), socket.create_connection((host, live.port), timeout=2):
            pass
    with socket.create_connection(("127.0.0.1", live.port), timeout=2):
        pass


def test_serve_defaults_to_loopback(monkeypatch, tmp_path):
    import ui.app

    seen = {}
    monkeypatch.setattr(ui.app, "serve", lambda settings, host, port, auth: seen.update(host=host, auth=auth))
    monkeypatch.delenv("POLICY_RAG_AUTH", raising=False)
    result = CliRunner().invoke(main, ["serve", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert seen == {"host": "127.0.0.1", "auth": None}
