"""OpenAI-compatible chat API on the app's server: any OpenAI client (Open WebUI, Chatbox, LobeChat, Dify, a WeCom
bot, the `openai` SDK) asks policy-rag and gets the cited answer.

    GET  /v1/models             one model, "policy-rag"
    POST /v1/chat/completions   the last user message is the question; `stream` gives SSE chunks

The reply's content is `Answer.as_text()`: the answer, then its numbered memo-ready sources. The citations also
come as data in the extra field `policy_rag` of the response (of the last chunk when streaming):
{"found": bool, "citations": [Citation.to_dict() …], "unsupported": [...]}. When POLICY_RAG_AUTH (user:password)
is set, a request needs `Authorization: Bearer <password>` (or `Bearer user:password`, or HTTP basic).
"""

from __future__ import annotations

import base64
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import Request  # at module level: FastAPI reads the handlers' annotations from these globals

MODEL = "policy-rag"


def add_routes(app: Any, ask: Callable[[str], Any], auth: tuple[str, str] | None) -> None:
    """Add /v1/models and /v1/chat/completions to `app` (FastAPI); `ask(question) -> Answer`."""
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import JSONResponse, StreamingResponse

    def refused(request: Request) -> JSONResponse | None:
        if auth is None or authorized(request.headers.get("authorization", ""), auth):
            return None
        return _error(401, "a valid API key is required (Authorization: Bearer <password>)", "invalid_api_key")

    async def models(request: Request) -> JSONResponse:
        return refused(request) or JSONResponse({"object": "list", "data": [
            {"id": MODEL, "object": "model", "created": 0, "owned_by": "policy-rag"}]})

    async def completions(request: Request):
        if (no := refused(request)) is not None:
            return no
        try:
            body = await request.json()
            question = last_question(body)
        except (ValueError, TypeError) as err:
            return _error(400, str(err), "invalid_request_error")
        answer = await run_in_threadpool(ask, question)
        reply = completion(answer, body.get("model") or MODEL)
        if body.get("stream"):
            return StreamingResponse(sse_chunks(reply), media_type="text/event-stream")
        return JSONResponse(reply)

    app.add_api_route("/v1/models", models, methods=["GET"])
    app.add_api_route("/v1/chat/completions", completions, methods=["POST"])


def authorized(header: str, auth: tuple[str, str]) -> bool:
    """Bearer <password>, Bearer user:password or Basic base64(user:password), compared in constant time."""
    user, password = auth
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "basic":
        try:
            value = base64.b64decode(value, validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return False
        return hmac.compare_digest(value, f"{user}:{password}")
    if scheme.lower() == "bearer":
        return hmac.compare_digest(value, password) or hmac.compare_digest(value, f"{user}:{password}")
    return False


def last_question(body: Any) -> str:
    """The text of the last user message (a string, or the text parts of a list of parts)."""
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        raise ValueError("the request needs \"messages\": a list of {\"role\", \"content\"}")
    for message in reversed(body["messages"]):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                content = "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
            if isinstance(content, str) and content.strip():
                return content.strip()
    raise ValueError("no user message with text in \"messages\"")


def completion(answer: Any, model: str) -> dict[str, Any]:
    """A chat.completion object for `answer`, with the citations as data in `policy_rag`."""
    text = answer.as_text()
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": len(answer.question), "completion_tokens": len(text),
                  "total_tokens": len(answer.question) + len(text)},
        "policy_rag": {"found": not answer.abstained, "citations": [c.to_dict() for c in answer.citations],
                       "unsupported": [{"sentence": u.sentence, "citation": u.citation, "reason": u.reason}
                                       for u in answer.unsupported]},
    }


def sse_chunks(reply: dict[str, Any], size: int = 40) -> Iterator[str]:
    """The reply as chat.completion.chunk events: the role, the content in pieces, the end with `policy_rag`."""
    head = {k: reply[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}
    content = reply["choices"][0]["message"]["content"]

    def event(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        chunk = head | {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]} | extra
        return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"

    yield event({"role": "assistant", "content": ""})
    for start in range(0, len(content), size):
        yield event({"content": content[start : start + size]})
    yield event({}, "stop", policy_rag=reply["policy_rag"])
    yield "data: [DONE]\n\n"


def _error(status: int, message: str, code: str):
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": {"message": message, "type": code, "code": code}}, status_code=status)
