"""LLM answerer over any OpenAI-compatible chat model, through LangChain."""

from __future__ import annotations

from html import escape
from collections.abc import Iterator, Sequence

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from rag.answer import ExtractiveAnswerer
from rag.citations import MARKER, check_citations, sentences_with_markers, split_sentences
from rag.config import Settings
from rag.errors import ConfigError, LLMError
from rag.prompts import render
from rag.question import Question
from rag.records import Answer, Citation, Hit
from rag.sentences import bigram_overlap, strip_marker

ABSTAIN_TOKEN = "【无法回答】"
MAX_SOURCES = 6


def source_blocks(hits: Sequence[Hit]) -> str:
    """Numbered, delimited source blocks. Every field that comes from a document (title, label, text) is
    escaped as in HTML (< > & " as entities), so nothing a document holds can open or close a tag and
    leave its block: `</source>`, `< /source>` and `&lt;/source&gt;` all stay text."""
    blocks = []
    for n, hit in enumerate(hits, 1):
        c = hit.clause
        blocks.append(render("source_block.zh.txt", n=n, title=escape(c.title), label=escape(c.label or "导语"),
                             text=escape(c.text)))
    return "\n".join(blocks)


def build_messages(question: str, hits: Sequence[Hit]) -> list:
    return [
        SystemMessage(render("answer_system.zh.txt")),
        HumanMessage(render("answer_user.zh.txt", sources=source_blocks(hits), question=question)),
    ]


class LLMAnswerer:
    """Asks the chat model with numbered sources; checks markers; falls back to extractive when it cites nothing."""

    def __init__(self, model: BaseChatModel, fallback: ExtractiveAnswerer, endpoint: str = "the chat model") -> None:
        self.model = model
        self.fallback = fallback
        self.endpoint = endpoint

    @classmethod
    def from_settings(cls, settings: Settings, fallback: ExtractiveAnswerer) -> LLMAnswerer:
        from langchain_openai import ChatOpenAI

        if not settings.llm_base_url:
            raise ConfigError("the llm answerer needs POLICY_RAG_LLM_BASE_URL (an OpenAI-compatible /v1 URL)")
        model = ChatOpenAI(
            base_url=settings.llm_base_url, model=settings.llm_model, api_key=settings.llm_api_key or "none",
            temperature=settings.llm_temperature, timeout=60, max_retries=1,
        )
        return cls(model, fallback, settings.llm_base_url)

    def answer(self, question: Question | str, hits: Sequence[Hit]) -> Answer:
        *_, final = self.stream(question, hits)
        return final

    def stream(self, question: Question | str, hits: Sequence[Hit]) -> Iterator[str | Answer]:
        """Yield text chunks as the model writes them, then the checked Answer. The model decides whether the
        sources answer the question (its abstain token); the extractive refusal does not veto it, and the
        citation check still runs on what it writes."""
        question = Question.of(question)
        if not hits:  # nothing retrieved: nothing to ask the model about
            answer = self.fallback.abstain(question, hits)
            yield answer.text
            yield answer
            return
        sources = list(hits[:MAX_SOURCES])
        parts: list[str] = []
        try:
            for chunk in self.model.stream(build_messages(question.text, sources)):
                text = chunk.content if isinstance(chunk.content, str) else ""
                if text:
                    parts.append(text)
                    yield text
        except _api_errors() as error:
            raise LLMError(_describe(error, self.endpoint)) from None  # its text may echo the API key
        yield self.finish(question, "".join(parts), sources, hits)

    def finish(self, question: Question, raw: str, sources: Sequence[Hit], hits: Sequence[Hit]) -> Answer:
        raw = raw.strip()
        if raw.startswith(ABSTAIN_TOKEN) or (ABSTAIN_TOKEN in raw and not MARKER.search(raw)):
            answer = self.fallback.abstain(question, hits)
            return answer
        notices: list[str] = []
        valid = {n for n in range(1, len(sources) + 1)}
        invalid = sorted({int(m) for m in MARKER.findall(raw)} - valid)
        if invalid:
            notices.append("已删除指向不存在来源的引用标记：" + "".join(f"[{n}]" for n in invalid))
            raw = MARKER.sub(lambda m: m.group(0) if int(m.group(1)) in valid else "", raw)
        used = []
        for m in MARKER.findall(raw):
            if int(m) not in used:
                used.append(int(m))
        if not used:
            answer = self.fallback.answer(question, hits)
            answer.notices.append("模型的回答没有引用任何来源，已改用抽取式回答。")
            return answer
        renumber = {old: new for new, old in enumerate(used, 1)}
        text = MARKER.sub(lambda m: f"[{renumber[int(m.group(1))]}]", raw)
        citations = [Citation(renumber[old], sources[old - 1].clause, "") for old in used]
        citations = [Citation(c.n, c.clause, best_quote(text, c)) for c in citations]
        answer = Answer(question=question.text, text=text, abstained=False, citations=citations,
                        retrieved=list(hits), notices=notices)
        answer.unsupported = check_citations(text, citations)
        return answer


def _api_errors() -> tuple[type[Exception], ...]:
    from openai import APIError

    return (APIError,)


def _describe(error: Exception, endpoint: str) -> str:
    """What failed and what to check, from the status alone: the server's own text may quote the API key."""
    status = getattr(error, "status_code", None)
    if status in (401, 403):
        return f"the language model at {endpoint} refused the API key (HTTP {status}); check POLICY_RAG_LLM_API_KEY"
    if status == 429:
        return f"the language model at {endpoint} is rate-limiting requests (HTTP 429); try again shortly"
    if status is not None:
        return f"the language model at {endpoint} failed (HTTP {status}); try again or use --answerer extractive"
    return f"cannot reach the language model at {endpoint} ({type(error).__name__}); check POLICY_RAG_LLM_BASE_URL"


def best_quote(answer_text: str, citation: Citation) -> str:
    """The sentence of the cited clause closest to the answer sentences that cite it."""
    citing = "".join(s for s, nums in sentences_with_markers(answer_text) if citation.n in nums)
    sentences = [strip_marker(s) for s in split_sentences(citation.clause.text)] or [citation.clause.text]
    return max(sentences, key=lambda s: bigram_overlap(s, citing))
