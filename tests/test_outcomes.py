"""Each process closes with words of its own (domain/outcomes.OUTCOMES), each counted once as one
of 002 §7.1's results; read from the code, no database (close_case's refusal: test_export.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from aftersales.domain.models import Process
from aftersales.domain.outcomes import LABEL, OUTCOMES, RESULT, Outcome, Result

PACKAGE = Path(__file__).resolve().parents[1] / "aftersales"

# The modules that name outcomes, and whose words they are. A module not listed here that names an
# ``Outcome.X`` fails the test below: say which process it closes for.
MODULE_PROCESS = {
    "flows/returns.py": Process.RETURN,
    "flows/exchange.py": Process.EXCHANGE,
    "flows/compensation.py": Process.COMPENSATION,
    "flows/out_of_area.py": Process.OUT_OF_AREA,
    "flows/repair.py": Process.REPAIR,
    "flows/review.py": Process.REVIEW,
    "flows/wrong_shipment.py": Process.WRONG_SHIPMENT,
    "flows/dispute.py": Process.DISPUTE,
    "flows/complaint.py": Process.COMPLAINT,
    "flows/order_tracker.py": Process.TRACKING,
    "flows/enquiry.py": Process.ENQUIRY,
    "flows/emergency.py": Process.EMERGENCY,
    "tasks/enquiry.py": Process.ENQUIRY,
    "tasks/exchange.py": Process.EXCHANGE,
    "tasks/compensation.py": Process.COMPENSATION,
    "tasks/out_of_area.py": Process.OUT_OF_AREA,
    "tasks/repair.py": Process.REPAIR,
    "tasks/review.py": Process.REVIEW,
    "tasks/wrong_shipment.py": Process.WRONG_SHIPMENT,
    "tasks/dispute.py": Process.DISPUTE,
    "tasks/complaint.py": Process.COMPLAINT,
    "tasks/tracking.py": Process.TRACKING,
    "tasks/platform_sync.py": Process.RETURN,
    "domain/complaint_rules.py": Process.COMPLAINT,
}
SCANNED = ("flows", "tasks", "intake", "domain", "approvals", "deployments", "api", "reporting")


def _words_named(path: Path) -> set[str]:
    """The ``Outcome.X`` a module names, and the string outcomes it hands to ``close_case``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    words: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "Outcome" \
                and node.attr in Outcome.__members__:
            words.add(Outcome[node.attr].value)
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "close_case":
            outcome = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "outcome"), None)
            if len(node.args) > 2 and isinstance(node.args[0], ast.Name) and node.args[0].id == "session":
                outcome = node.args[2]  # case_store.close_case(session, case_id, outcome)
            if isinstance(outcome, ast.Constant) and isinstance(outcome.value, str):
                words.add(outcome.value)
    return words


def test_every_process_has_its_words_and_every_word_a_result():
    assert set(OUTCOMES) == set(Process), "a process without its outcomes"
    for process, words in OUTCOMES.items():
        assert words, f"{process} closes with nothing"
        assert all(isinstance(word, Outcome) for word in words)
        assert all(RESULT[word] in set(Result) and LABEL[word] for word in words), process
    orphans = set(Outcome) - set().union(*OUTCOMES.values())
    assert not orphans, f"outcomes no process closes with: {sorted(orphans)}"
    # each process ends well in at least one way
    assert all(any(RESULT[word] is Result.RESOLVED for word in words) for words in OUTCOMES.values())
    # a buyer who never sent the goods back: the request lapsed, left out of the split (not "unresolved")
    assert RESULT[Outcome.CLOSED_NOT_SHIPPED] is Result.EXCLUDED


def test_each_module_names_only_its_own_process_outcomes():
    """Read from the source: every ``Outcome.X`` in flows/<process>.py, tasks/<process>.py (and the
    rules that pick an outcome) is one of that process's words; other modules name none."""
    wrong, unplaced = [], []
    for folder in SCANNED:
        for path in sorted((PACKAGE / folder).rglob("*.py")):
            name = path.relative_to(PACKAGE).as_posix()
            if name == "domain/outcomes.py":
                continue
            words = _words_named(path)
            if not words:
                continue
            process = MODULE_PROCESS.get(name)
            if process is None:
                unplaced.append(f"{name}: {sorted(words)}")
                continue
            wrong += [f"{name} closes a {process.value} case as {word!r}" for word in sorted(words - {w.value for w in OUTCOMES[process]})]
    assert not unplaced, f"modules naming outcomes with no process in MODULE_PROCESS: {unplaced}"
    assert not wrong, wrong
    assert all((PACKAGE / name).exists() for name in MODULE_PROCESS), "the map names a module that is gone"


def test_the_outcomes_chosen_from_forms_are_their_process_words():
    """The dispute closes with its closing form's result, the complaint with the customer's satisfaction."""
    from aftersales.domain.complaint_rules import Satisfaction, outcome_for
    from aftersales.domain.dispute_rules import DisputeResult

    assert {Outcome(result.value) for result in DisputeResult} <= OUTCOMES[Process.DISPUTE]
    assert {outcome_for(answer) for answer in Satisfaction} <= OUTCOMES[Process.COMPLAINT]


@pytest.mark.parametrize("process", list(Process))
def test_a_word_of_another_process_is_refused_by_name(process):
    from aftersales.domain.outcomes import WrongOutcome, outcome_for_process

    for word in OUTCOMES[process]:
        assert outcome_for_process(process, word.value) is word
    for word in sorted(set(Outcome) - OUTCOMES[process]):
        with pytest.raises(WrongOutcome, match=process.value) as refused:
            outcome_for_process(process, word)
        assert all(allowed.value in str(refused.value) for allowed in OUTCOMES[process])
    with pytest.raises(ValueError, match="no outcome of any process"):
        outcome_for_process(process, "sort_of_done")
