"""Load test of the chat: concurrent askers against `policy-rag serve` on 127.0.0.1, through Gradio's API.

    python -m tests.load_chat --data-dir DIR [--askers 20] [--seconds 60]

starts the server on a free loopback port, runs the askers and prints requests, errors, throughput and
latency percentiles. The test suite runs a short version (tests/test_reliability.py).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

QUESTIONS = (
    "秦创原到2026年技术合同成交额要达到多少？",
    "山西省对中试基地建设有哪些支持措施？",
    "秦创原对科技金融有什么支持？",
    "陕西计划新培养引进多少高层次人才？",
    "山西和陕西在科技金融方面分别有什么举措？",
    "上海市对人工智能企业的税收优惠是什么？",  # off-corpus: an abstention is an answer too
)


@dataclass
class LoadResult:
    askers: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")

    def summary(self) -> str:
        mean = statistics.fmean(self.latencies) if self.latencies else float("nan")
        return (f"{self.askers} askers × {self.seconds:.0f} s: {len(self.latencies)} answers, {len(self.errors)} errors, "
                f"{self.throughput:.2f} answers/s, latency mean {mean:.2f} s, p50 {self.percentile(50):.2f} s, "
                f"p95 {self.percentile(95):.2f} s, max {max(self.latencies, default=float('nan')):.2f} s")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data_dir: Path, port: int, env: dict[str, str] | None = None,
                 timeout: float = 180) -> subprocess.Popen:
    """`policy-rag serve` on 127.0.0.1:`port` (the default host); returns once the page answers."""
    command = [sys.executable, "-m", "rag.cli", "serve", "--port", str(port), "--data-dir", str(data_dir)]
    full_env = os.environ | {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"} | (env or {})
    server = subprocess.Popen(command, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              cwd=Path(__file__).resolve().parents[1])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"server exited with {server.returncode}: {server.stdout.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2):
                return server
        except OSError as err:
            if getattr(err, "code", None) in (401, 403):  # up, behind a login
                return server
            time.sleep(0.5)
    server.kill()
    raise RuntimeError(f"server did not answer on port {port} within {timeout:.0f} s")


def stop_server(server: subprocess.Popen) -> str:
    """Stop the server; returns what it printed (for the no-secrets-in-logs test)."""
    server.terminate()
    try:
        out, _ = server.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        out, _ = server.communicate()
    return out.decode("utf-8", errors="replace")


def ask_once(client, question: str) -> str:
    """One question through the chat's /ask endpoint; returns the final assistant message."""
    history, _sources, _box = client.predict(question, [], [], api_name="/ask")
    content = history[-1]["content"]
    return content if isinstance(content, str) else " ".join(part.get("text", "") for part in content)


def run_load(url: str, askers: int = 20, seconds: float = 60, auth: tuple[str, str] | None = None,
             questions: Sequence[str] = QUESTIONS) -> LoadResult:
    """`askers` threads, each with its own client, asking in turn until `seconds` have passed."""
    from gradio_client import Client

    result = LoadResult(askers, seconds)
    lock = threading.Lock()
    clients = [Client(url, auth=auth, verbose=False) for _ in range(askers)]
    start = time.monotonic()
    deadline = start + seconds

    def asker(n: int) -> None:
        i = n
        while time.monotonic() < deadline:
            question = questions[i % len(questions)]
            i += 1
            t0 = time.monotonic()
            try:
                text = ask_once(clients[n], question)
                problem = None if text and "正在检索" not in text else f"empty or unfinished answer: {text[:80]!r}"
            except Exception as err:  # noqa: BLE001 (every failure is a finding of the load test)
                problem = f"{type(err).__name__}: {err}"
            with lock:
                if problem:
                    result.errors.append(problem)
                else:
                    result.latencies.append(time.monotonic() - t0)

    threads = [threading.Thread(target=asker, args=(n,)) for n in range(askers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.seconds = time.monotonic() - start  # the last answers finish after the deadline
    for client in clients:
        client.close()
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="an ingested index (e.g. of corpus/)")
    parser.add_argument("--askers", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args(argv)
    port = free_port()
    server = start_server(args.data_dir, port)
    try:
        result = run_load(f"http://127.0.0.1:{port}/", args.askers, args.seconds)
    finally:
        stop_server(server)
    print(result.summary())
    for error in result.errors[:10]:
        print("  error:", error)
    return 1 if result.errors else 0


if __name__ == "__main__":
    sys.exit(main())
