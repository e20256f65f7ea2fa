"""Fit the answer-confidence model (data/calibration.json) on the dev set, and report refusals.

Positives: dev questions whose relevant document is in the top 3 of hybrid search. Negatives:
the unanswerable questions that the intent rule (``compose.unsupported_intent``: amounts, hours,
deadlines, personal status) does not already refuse, i.e. the off-topic ones the confidence
model alone must catch. Answerable questions that retrieval misses are left out of the fit
(their signals look like answerable ones; they are what retrieval quality, not the threshold,
must fix). A logistic model over ``FIT_FEATURES`` (of ``assistant.confidence.FEATURES``); the threshold keeps at least
``--min-refusal`` of the negatives refused. Five-fold cross-validation numbers are printed next to
the fitted ones, and the end-to-end refusal rate (intent rule or confidence) on every
unanswerable question of the dev and held-out sets.

    python benchmarks/calibrate.py [--json] [--write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.compose import unsupported_intent  # noqa: E402
from assistant.confidence import Calibration, features  # noqa: E402

#: with a few dozen negatives, more features overfit (a 5-feature fit refused easy garbage
#: questions); the top dense cosine and the language carry the signal
FIT_FEATURES = ("dense_top", "english")
from assistant.language import detect_language  # noqa: E402
from assistant.pipeline import CALIBRATION_FILE  # noqa: E402
from assistant.services import Services  # noqa: E402
from retrieval._types import SearchFilters  # noqa: E402


def load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def fit_logistic(
    x: np.ndarray, y: np.ndarray, l2: float = 0.01, steps: int = 20000, lr: float = 0.5
) -> tuple[np.ndarray, float]:
    """Plain gradient descent on standardized features; returns weights for raw features."""
    mean, std = x.mean(axis=0), x.std(axis=0)
    std[std == 0] = 1.0
    z = (x - mean) / std
    w = np.zeros(z.shape[1])
    b = 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(z @ w + b)))
        grad_w = z.T @ (p - y) / len(y) + l2 * w
        grad_b = float(np.mean(p - y))
        w -= lr * grad_w
        b -= lr * grad_b
    raw_w = w / std
    raw_b = b - float(np.sum(w * mean / std))
    return raw_w, raw_b


def choose_threshold(scores_pos: np.ndarray, scores_neg: np.ndarray, min_refusal: float) -> float:
    """The lowest threshold that refuses at least ``min_refusal`` of the negatives."""
    candidates = np.unique(np.concatenate([scores_pos, scores_neg, [0.5]]))
    for t in candidates:
        if np.mean(scores_neg < t) >= min_refusal:
            return float(t)
    return float(candidates[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--write", action="store_true", help=f"write data/{CALIBRATION_FILE}")
    parser.add_argument("--min-refusal", type=float, default=0.85)
    args = parser.parse_args()

    services = Services()
    searcher = services.searcher
    seen: dict[str, tuple[list[Any], list[float]]] = {}

    def observe(q: dict[str, Any]) -> tuple[list[Any], list[float]]:
        """Search once per question: its passages and the confidence features of the result."""
        if q["question"] not in seen:
            passages = searcher.search(q["question"], SearchFilters(tenant=q.get("tenant", "hakodate")), k=5)
            feats = features(q["question"], passages, q.get("language") or detect_language(q["question"]))
            seen[q["question"]] = (passages, [feats[f] for f in FIT_FEATURES])
        return seen[q["question"]]

    def found(q: dict[str, Any]) -> bool:
        return any(p.id in set(q["relevant"]) for p in observe(q)[0][:3])

    rows: list[tuple[list[float], int, str]] = []
    for q in load(ROOT / "benchmarks/devset/questions.jsonl"):
        if found(q):
            rows.append((observe(q)[1], 1, "answerable"))
    unanswerable = load(ROOT / "benchmarks/devset/unanswerable.jsonl")
    intent_refused = sum(1 for q in unanswerable if unsupported_intent(q["question"]))
    rows += [(observe(q)[1], 0, "unanswerable") for q in unanswerable if not unsupported_intent(q["question"])]

    x = np.array([r[0] for r in rows], dtype=float)
    y = np.array([r[1] for r in rows], dtype=float)
    kinds = np.array([r[2] for r in rows])

    # five-fold cross-validation: how the threshold generalizes to questions it did not see
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    folds = np.array_split(order, 5)
    cv_answered = cv_refused = 0.0
    for fold in folds:
        train = np.setdiff1d(order, fold)
        w, b = fit_logistic(x[train], y[train])
        s_train = 1 / (1 + np.exp(-(x[train] @ w + b)))
        t = choose_threshold(s_train[y[train] == 1], s_train[y[train] == 0], args.min_refusal)
        s = 1 / (1 + np.exp(-(x[fold] @ w + b)))
        cv_answered += float(np.sum((s >= t) & (y[fold] == 1)))
        cv_refused += float(np.sum((s < t) & (kinds[fold] == "unanswerable")))
    w, b = fit_logistic(x, y)
    scores = 1 / (1 + np.exp(-(x @ w + b)))
    threshold = choose_threshold(scores[y == 1], scores[y == 0], args.min_refusal)
    pos, unans = y == 1, kinds == "unanswerable"
    report = {
        "n_answerable_found": int(pos.sum()),
        "n_unanswerable": int(unans.sum()),
        "threshold": threshold,
        "fitted": {
            "answered_when_found": float(np.mean(scores[pos] >= threshold)),
            "refused_unanswerable": float(np.mean(scores[unans] < threshold)),
        },
        "cross_validated": {
            "answered_when_found": cv_answered / max(pos.sum(), 1),
            "refused_unanswerable": cv_refused / max(unans.sum(), 1),
        },
        "weights": dict(zip(FIT_FEATURES, map(float, w), strict=True)),
        "bias": b,
    }

    def answers(q: dict[str, Any]) -> bool:
        """Would the pipeline answer: no intent rule fires and the confidence clears the threshold."""
        if unsupported_intent(q["question"]):
            return False
        z = b + float(np.dot(w, observe(q)[1]))
        return bool(1 / (1 + np.exp(-z)) >= threshold)

    # end to end: refused share of every unanswerable question (intent rule or threshold), and
    # answered share of the answerable ones whose document retrieval found
    end_to_end: dict[str, float] = {}
    for name in ("devset", "heldout"):
        path = ROOT / f"benchmarks/{name}/unanswerable.jsonl"
        if not path.exists():
            continue
        questions = load(path)
        end_to_end[name] = sum(not answers(q) for q in questions) / len(questions)
        findable = [q for q in load(ROOT / f"benchmarks/{name}/questions.jsonl") if found(q)]
        end_to_end[f"{name}_answered_when_found"] = sum(answers(q) for q in findable) / max(len(findable), 1)
    services.close()
    report["intent_rule_refused_dev"] = intent_refused
    report["end_to_end"] = end_to_end
    if args.write:
        Calibration(
            weights=report["weights"],
            bias=b,
            threshold=threshold,
            fitted_on=(
                f"benchmarks/devset ({len(y)} questions) on {dt.date.today().isoformat()}; "
                f"cross-validated: answered {report['cross_validated']['answered_when_found']:.2f} of found, "
                f"refused {report['cross_validated']['refused_unanswerable']:.2f} of unanswerable"
            ),
        ).save(services.settings.data_dir / CALIBRATION_FILE)
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return
    print(
        f"answerable found in top 3: {report['n_answerable_found']}, "
        f"unanswerable left to the threshold: {report['n_unanswerable']}"
    )
    print(f"threshold {threshold:.3f}")
    print(f"{'':<16}{'answered (found)':>18}{'refused (unanswerable)':>24}")
    for name in ("fitted", "cross_validated"):
        r = report[name]
        print(f"{name:<16}{r['answered_when_found']:>18.3f}{r['refused_unanswerable']:>24.3f}")
    print("weights:", json.dumps(report["weights"]), "bias:", round(b, 3))
    print(f"intent rule refuses {intent_refused} of {len(unanswerable)} dev unanswerable questions before retrieval")
    for name, value in end_to_end.items():
        print(f"end to end {name}: {value:.3f}" + ("" if "answered" in name else " of unanswerable refused"))


if __name__ == "__main__":
    main()
