"""The OpenAI-compatible API of `policy-rag serve`, asked by the `openai` Python client over loopback: models,
answers with their citations (plain and streamed), refusals, bad requests, and the chat's login."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

import pytest
from openai import AuthenticationError, BadRequestError, OpenAI

from .conftest import QCY
from .load_chat import free_port, start_server, stop_server

QUESTION = "秦创原到2026年技术合同成交额要达到多少？"


@pytest.fixture(scope="module")
def server(seed_index_dir):
    port = free_port()
    proc = start_server(seed_index_dir, port, env={"POLICY_RAG_AUTH": "staff:s3cret"})
    yield f"http://127.0.0.1:{port}"
    stop_server(proc)


def _client(server: str, key: str = "s3cret") -> OpenAI:
    return OpenAI(base_url=f"{server}/v1", api_key=key, max_retries=0, timeout=120)


def test_models_and_a_cited_answer(server):
    client = _client(server)
    assert [m.id for m in client.models.list().data] == ["policy-rag"]
    reply = client.chat.completions.create(model="policy-rag", messages=[
        {"role": "system", "content": "你是助手"}, {"role": "user", "content": "你好"},
        {"role": "assistant", "content": "您好"}, {"role": "user", "content": QUESTION}])
    content = reply.choices[0].message.content
    assert "6000亿元" in content and "\n来源：\n[1] 《" in content
    extra = reply.model_extra["policy_rag"]
    assert extra["found"] is True and extra["citations"][0]["doc_id"] == QCY
    assert extra["citations"][0]["label"] in content and "6000亿元" in extra["citations"][0]["text"]


def test_a_streamed_answer_is_the_same_answer(server):
    client = _client(server, key="staff:s3cret")
    chunks = list(client.chat.completions.create(model="policy-rag", stream=True,
                                                 messages=[{"role": "user", "content": QUESTION}]))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks)
    whole = _client(server).chat.completions.create(model="policy-rag", messages=[{"role": "user", "content": QUESTION}])
    assert streamed == whole.choices[0].message.content
    assert chunks[-1].choices[0].finish_reason == "stop" and chunks[-1].model_extra["policy_rag"]["citations"]


def test_a_question_the_documents_cannot_answer_is_refused(server):
    reply = _client(server).chat.completions.create(model="policy-rag", messages=[
        {"role": "user", "content": "北京市2025年的最低工资标准是多少？"}])
    assert reply.model_extra["policy_rag"] == {"found": False, "citations": [], "unsupported": []}
    assert "没有找到" in reply.choices[0].message.content


def test_login_is_required_and_bad_requests_are_named(server):
    with pytest.raises(AuthenticationError):
        _client(server, key="wrong").models.list()
    with pytest.raises(AuthenticationError):
        _client(server, key="wrong").chat.completions.create(model="policy-rag",
                                                             messages=[{"role": "user", "content": QUESTION}])
    basic = base64.b64encode(b"staff:s3cret").decode()
    request = urllib.request.Request(f"{server}/v1/models", headers={"Authorization": f"Basic {basic}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert json.loads(response.read())["data"][0]["id"] == "policy-rag"
    with pytest.raises(BadRequestError, match="no user message"):
        _client(server).chat.completions.create(model="policy-rag", messages=[{"role": "system", "content": "x"}])
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(urllib.request.Request(f"{server}/v1/models"), timeout=30)
    assert raised.value.code == 401
