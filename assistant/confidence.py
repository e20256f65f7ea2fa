"""Calibrated confidence that the retrieved passages answer a question.

A logistic model over a few retrieval signals, fitted by ``benchmarks/calibrate.py`` on the dev
set's answerable and unanswerable questions and shipped as ``data/calibration.json``. Below the
threshold the assistant refuses instead of answering from a loosely related passage.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from pydantic import BaseModel

from retrieval._types import Passage
from retrieval.sparse import CharBigramTokenizer

FEATURES = ("dense_top", "dense_margin", "agree", "coverage", "english")
_tokenizer = CharBigramTokenizer()


def features(question: str, passages: list[Passage], language: str) -> dict[str, float]:
    if not passages:
        return dict.fromkeys(FEATURES, 0.0)
    top = passages[0]
    dense_scores = [p.raw_scores["dense"] for p in passages if "dense" in p.raw_scores]
    dense_top = top.raw_scores.get("dense", max(dense_scores, default=0.0))
    others = [s for p, s in zip(passages[1:], dense_scores[1:], strict=False) if p.id != top.id]
    margin = dense_top - max(others) if others else 0.05
    ranks = top.ranks
    agree = 1.0 if ranks.get("dense", 99) <= 3 and ranks.get("sparse", 99) <= 3 else 0.0
    q_terms = {t for t in _tokenizer.terms(question) if t.startswith(("b:", "w:"))}
    p_terms = set(_tokenizer.terms(f"{top.title}\n{top.text}"))
    coverage = len(q_terms & p_terms) / len(q_terms) if q_terms else 0.0
    return {
        "dense_top": float(dense_top),
        "dense_margin": float(margin),
        "agree": agree,
        "coverage": float(coverage),
        "english": 1.0 if language == "en" else 0.0,
    }


class Calibration(BaseModel):
    weights: dict[str, float]
    bias: float
    threshold: float
    #: where the numbers came from (dev set, date, metrics) - shown in reports
    fitted_on: str = "default (uncalibrated)"

    def confidence(self, feats: dict[str, float]) -> float:
        z = self.bias + sum(self.weights.get(name, 0.0) * feats.get(name, 0.0) for name in FEATURES)
        return 1.0 / (1.0 + math.exp(-z))

    @classmethod
    def load(cls, path: Path) -> Calibration:
        if path.exists():
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        # e5 cosines of answerable questions sit around 0.85+, unrelated ones under 0.80
        return cls(weights={"dense_top": 40.0, "coverage": 2.0}, bias=-33.5, threshold=0.5)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.model_dump(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
