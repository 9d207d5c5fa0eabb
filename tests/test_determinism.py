"""The same question gets the same answer in every process. Python salts string hashes per process
(PYTHONHASHSEED), so anything that walks a set of words and keeps the first of equals would answer
differently depending on which process took the message."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.cli_helpers import ROOT, langso

SEEDS = ("1", "2", "3")
EVAL = ROOT / "tests" / "eval" / "questions.tsv"
# offered in one process and handed to the tech team in another while typo repair kept the first of equals
QR_QUESTION = "ra chợ người bán đưa cái hình ô vuông đen trắng biểu quét trả tiền, quét bằng gì"


def _evaluation(seed: str, database: Path) -> list[dict]:
    """The handbook evaluation set through `langso ask --json -`, in one fresh process: decision, top
    three, scores and coverage (not the time taken)."""
    questions = [line.split("\t")[0] for line in EVAL.read_text(encoding="utf-8").splitlines()[1:] if line.strip()]
    result = langso("ask", "--json", "-", stdin="\n".join(questions),
                    env={"LANGSO_DATABASE_URL": f"sqlite:///{database}", "PYTHONHASHSEED": seed})
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(answers) == len(questions)
    return [{key: answer[key] for key in ("question", "decision", "hits")} for answer in answers]


def test_the_evaluation_set_gets_the_same_answers_under_any_hash_seed(tmp_path: Path) -> None:
    with ThreadPoolExecutor(len(SEEDS)) as processes:  # side by side: each process is one core's work
        first, *others = processes.map(lambda seed: _evaluation(seed, tmp_path / f"h{seed}.db"), SEEDS)
    assert len(first) > 300
    for seed, answers in zip(SEEDS[1:], others, strict=True):
        differing = [(a, b) for a, b in zip(first, answers, strict=True) if a != b]
        assert not differing, f"PYTHONHASHSEED={SEEDS[0]} and {seed} differ on {len(differing)}: {differing[:3]}"


def test_langso_ask_gives_the_same_decision_under_any_hash_seed(tmp_path: Path) -> None:
    env = {"LANGSO_DATABASE_URL": f"sqlite:///{tmp_path / 'h.db'}"}
    printed = []
    for seed in SEEDS:
        result = langso("ask", QR_QUESTION, "--json", env=env | {"PYTHONHASHSEED": seed})
        assert result.returncode == 0, result.stderr
        answer = json.loads(result.stdout.splitlines()[-1])
        printed.append((answer["decision"], answer["hits"]))
    assert printed == [printed[0]] * len(SEEDS)
    assert printed[0][1][0]["id"] == "thanh-toan-qr"
