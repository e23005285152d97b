"""The checklist judged on hand-made measures: every item's pass/warn/fail against its threshold."""

from __future__ import annotations

from dataclasses import fields, replace

import pytest

from curation.versions.checklist import (
    FAIL,
    NA,
    PASS,
    WARN,
    ChecklistThresholds,
    Measures,
    attestation_item,
    count,
    evaluate,
    failing,
    overridden_summary,
)


def measures(**changes: object) -> Measures:
    base = Measures(task_type="classification", n_items=100, n_train=80, n_eval=20, project_labels=["a", "b"],
                    train_label_counts={"a": 40, "b": 40}, label_counts={"a": 50, "b": 50}, attested=True,
                    k_labelled_items=100, overlap_k=2,
                    agreement={"alpha": 0.85, "low": 0.8, "high": 0.9, "n_scored": 100},
                    clusters=5, licences={"CC0-1.0": 100}, test_items=30)
    return replace(base, **changes)  # type: ignore[arg-type]


def status(m: Measures, key: str, t: ChecklistThresholds | None = None) -> str:
    return {item.key: item.status for item in evaluate(m, t or ChecklistThresholds())}[key]


def test_a_clean_classification_version_passes_everything() -> None:
    items = evaluate(measures(), ChecklistThresholds())
    assert {i.status for i in items} == {PASS}
    assert not failing(items)
    assert [i.area for i in items][:3] == ["task_alignment"] * 3


def test_every_threshold_has_help_and_round_trips() -> None:
    helps = ChecklistThresholds.help()
    assert all(helps[f.name] for f in fields(ChecklistThresholds))
    t = ChecklistThresholds(max_tokens=512, min_agreement=0.8)
    assert ChecklistThresholds.from_dict(t.to_dict()) == t
    assert ChecklistThresholds.from_dict({"max_tokens": 99, "unknown": 1}).max_tokens == 99


@pytest.mark.parametrize(("flagged", "expected"), [(0, PASS), (1, PASS), (2, WARN), (5, WARN), (6, FAIL)])
def test_off_task_rate(flagged: int, expected: str) -> None:
    assert status(measures(off_task_items=flagged), "off_task_rate") == expected


def test_label_coverage_and_balance() -> None:
    assert status(measures(train_label_counts={"a": 40}), "label_coverage") == FAIL
    assert status(measures(train_label_counts={"a": 40, "b": 3}), "label_coverage") == WARN
    assert status(measures(label_counts={"a": 100, "b": 10}), "label_balance") == WARN
    assert status(measures(label_counts={"a": 100, "b": 1}), "label_balance") == FAIL
    assert status(measures(label_counts={"a": 100, "b": 1}), "label_balance",
                  ChecklistThresholds(balance_min=0.0, balance_warn=0.0)) == PASS


def test_agreement_against_the_project_threshold_and_its_interval() -> None:
    assert status(measures(agreement={"alpha": 0.6, "low": 0.5, "high": 0.7}), "agreement") == FAIL
    assert status(measures(agreement={"alpha": 0.7, "low": 0.6, "high": 0.8}), "agreement") == WARN
    assert status(measures(agreement={"alpha": 0.7, "low": 0.6, "high": 0.8}), "agreement",
                  ChecklistThresholds(min_agreement=0.5)) == PASS
    assert status(measures(agreement={"alpha": None, "reason": "one rating each"}), "agreement") == WARN


def test_label_accuracy_items() -> None:
    assert status(measures(k_labelled_items=10), "k_labels") == WARN
    assert status(measures(disputed_left_out=3), "adjudicated") == WARN
    assert status(measures(suspected_left=1), "suspected_errors") == WARN
    assert status(measures(suspected_left=6), "suspected_errors") == FAIL


def test_duplicates_leakage_splits_and_provenance() -> None:
    generation = {"task_type": "generation"}
    assert status(measures(near_duplicate_pairs=1, **generation), "near_duplicates") == FAIL
    assert status(measures(near_duplicate_pairs=1, project_max_near_duplicate_pairs=2, **generation),
                  "near_duplicates") == PASS
    assert status(measures(near_duplicate_pairs=3, **generation), "near_duplicates",
                  ChecklistThresholds(max_near_duplicate_pairs=5)) == PASS


def test_near_duplicates_fail_only_on_what_hurts() -> None:
    # Paraphrases with one label on one side: reported as a share, a warning only above the threshold.
    assert status(measures(near_duplicate_pairs=40, near_duplicate_redundant=20), "near_duplicates") == PASS
    assert status(measures(near_duplicate_pairs=80, near_duplicate_redundant=31), "near_duplicates") == WARN
    assert status(measures(near_duplicate_pairs=80, near_duplicate_redundant=31), "near_duplicates",
                  ChecklistThresholds(max_near_duplicate_share=0.4)) == PASS
    # Conflicting labels or a pair across train and eval fail at any count.
    assert status(measures(near_duplicate_pairs=1, near_duplicate_conflicts=1, near_duplicate_redundant=1),
                  "near_duplicates") == FAIL
    assert status(measures(near_duplicate_pairs=1, near_duplicate_cross_split=1, near_duplicate_redundant=1),
                  "near_duplicates") == FAIL
    item = next(i for i in evaluate(measures(near_duplicate_pairs=3, near_duplicate_conflicts=1,
                                             near_duplicate_redundant=3), ChecklistThresholds())
                if i.key == "near_duplicates")
    assert item.value == "3 pairs: 1 with conflicting labels, 0 across train/eval; 3.0% of items redundant"
    assert status(measures(leaking_eval=["x"]), "leakage") == FAIL
    assert status(measures(n_eval=0), "split_sizes") == FAIL
    assert status(measures(missing_licence=["x"]), "provenance") == FAIL
    assert status(measures(licences={}), "licences") == WARN


def test_generation_format_items_and_not_applicable_label_items() -> None:
    gen = measures(task_type="generation", project_labels=[], chat_templates={"user/assistant": 100})
    assert status(gen, "label_coverage") == NA and status(gen, "label_balance") == NA
    assert status(gen, "chat_template") == PASS
    assert status(replace(gen, chat_templates={"user/assistant": 90, "system + user/assistant": 10}),
                  "chat_template") == FAIL
    assert status(replace(gen, invalid_chat=["x"]), "chat_template") == FAIL
    assert status(replace(gen, token_over=["x"], token_max=5000), "token_lengths") == FAIL
    assert status(replace(gen, empty_content=["x"]), "empty") == FAIL


def test_responses_reviewed_counts_the_items_left_out_for_want_of_review() -> None:
    gen = measures(task_type="generation", project_labels=[], chat_templates={"user/assistant": 100})
    assert status(gen, "reviewed_responses") == PASS
    assert "reviewed_responses" not in {i.key for i in evaluate(measures(), ChecklistThresholds())}
    item = {i.key: i for i in evaluate(replace(gen, unreviewed_left_out=1, imported_final=40),
                                       ChecklistThresholds())}["reviewed_responses"]
    assert (item.status, item.value, item.detail, item.measured) == (
        WARN, "60 reviewed by experts, 40 imported as final", "1 item left out: response not reviewed", 1.0)


def test_attestation_required_or_optional() -> None:
    assert attestation_item(False, ChecklistThresholds()).status == FAIL
    assert attestation_item(False, ChecklistThresholds(require_attestation=False)).status == WARN
    assert attestation_item(True, ChecklistThresholds()).status == PASS
    assert status(measures(clusters=None, clusters_reason="no embeddings"), "clusters") == WARN
    assert status(measures(clusters=2), "clusters") == WARN


def test_counts_have_the_right_plural() -> None:
    assert (count(1, "item"), count(0, "item"), count(2, "pair"), count(1, "eval item")) == \
        ("1 item", "0 items", "2 pairs", "1 eval item")
    values = {i.key: i.value for i in evaluate(measures(near_duplicate_pairs=1, leaking_eval=["x"], suspected_left=1,
                                                        missing_licence=["x"], adjudicated_items=1),
                                               ChecklistThresholds())}
    assert values["near_duplicates"].startswith("1 pair: 0 with conflicting labels") and \
        values["leakage"] == "1 eval item"
    assert values["suspected_errors"] == "1 item (1.0%)" and values["provenance"] == "1 item without"
    assert values["adjudicated"] == "1.0% (1 item)"
    assert "1 items" not in " ".join(values.values()) and "1 pairs" not in " ".join(values.values())


def test_the_override_note_names_checks_as_people_read_them() -> None:
    items = evaluate(measures(task_type="generation", project_labels=[], chat_templates={"user/assistant": 100},
                              near_duplicate_pairs=1, suspected_left=6), ChecklistThresholds())
    checklist = {"items": [i.to_dict() for i in items], "overridden": [i.key for i in failing(items)]}
    assert checklist["overridden"] == ["suspected_errors", "near_duplicates"]
    assert overridden_summary(checklist) == ("suspected label errors left (6 items (6.0%)) and "
                                             "near-duplicate pairs left (1 pair)")
    assert overridden_summary({**checklist, "overridden": ["near_duplicates"]}) == "near-duplicate pairs left (1 pair)"
    assert overridden_summary({"items": [], "overridden": []}) == ""


def test_test_leakage_only_passes_at_zero() -> None:
    assert status(measures(), "test_leakage") == PASS
    leaked = {i.key: i for i in evaluate(measures(test_leaks=["t1"]), ChecklistThresholds())}["test_leakage"]
    assert leaked.status == FAIL and leaked.measured == 1.0 and "t1" in leaked.detail
    assert "cannot be overridden" in leaked.threshold
    # no test set: nothing to compare, said as a warning (runs then have no frozen yardstick)
    assert status(measures(test_items=0), "test_leakage") == WARN
