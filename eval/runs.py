"""The records of an evaluation: one system's scored answers (`Run`) and what a run of the gate found (`Summary`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eval.metrics import ItemScore, aggregate, aggregate_by_type


@dataclass
class Run:
    """One system's answers to a QA set, with their scores."""

    name: str
    results: list[dict[str, Any]]          # {"id": …} + ask --json
    scores: list[ItemScore]

    @property
    def metrics(self) -> dict[str, float | None]:
        return aggregate(self.scores)

    @property
    def by_type(self) -> dict[str, dict[str, float | None]]:
        return aggregate_by_type(self.scores)

    def result(self, item_id: str) -> dict[str, Any] | None:
        return next((r for r in self.results if r["id"] == item_id), None)

    def score(self, item_id: str) -> ItemScore | None:
        return next((s for s in self.scores if s.id == item_id), None)


@dataclass
class Summary:
    """What `run_eval` returns and writes to summary.json."""

    qa: str
    answerer: str
    data_dir: str
    out_dir: str
    n: int
    metrics: dict[str, float | None]
    by_type: dict[str, dict[str, float | None]]
    failing: list[str]                                      # ids of the questions that fail a check
    gate: list[str] = field(default_factory=list)           # threshold failures; empty = pass
    thresholds: dict[str, float] = field(default_factory=dict)
    baseline: dict[str, Any] | None = None                  # {"name", "metrics", "by_type", "beaten"}
    compare: dict[str, Any] | None = None                   # {"dir", "metrics", "fixed", "broken", "changed"}
    seconds: float = 0.0
    notices: list[str] = field(default_factory=list)
    by_split: dict[str, dict[str, float | None]] = field(default_factory=dict)  # dev / test halves

    @property
    def passed(self) -> bool:
        return not self.gate

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()} | {"passed": self.passed}
