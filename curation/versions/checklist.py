"""The approval checklist of a dataset version: each item measured, with its value, a status
(pass / warn / fail / n/a) and the threshold it was judged against.

`evaluate(measures, thresholds)` is pure: `curation.versions` measures a candidate (`Measures`) and
stores the result with the thresholds it used. A failing item blocks approval unless the lead
overrides it with a written reason (`curation.versions.approve_version`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

PASS, WARN, FAIL, NA = "pass", "warn", "fail", "n/a"

AREAS = {
    "task_alignment": "Task alignment",
    "diversity": "Diversity and coverage",
    "label_accuracy": "Label accuracy",
    "deduplication": "De-duplication",
    "clean_splits": "Clean splits",
    "provenance": "Provenance",
    "format": "Format",
}


# Classification: near-duplicates with the same label on the same side of the split only over-weight a
# phrasing; they are reported as a share and warn above this. Evidence (all-MiniLM-L6-v2, cosine >= 0.95):
# BANKING77's 10,003 training texts, ordinary paraphrase data that trains to 0.93 accuracy, have 3,329
# near-duplicate pairs, and 1,995 items (19.9%) are redundant (members of a group beyond its first);
# the 480 demo tickets with 12 planted groups have 2.7%. 0.30 lets such data pass and warns when nearly a
# third of a dataset repeats itself. What hurts (conflicting labels, train/eval pairs) fails at any count.
MAX_NEAR_DUPLICATE_SHARE = 0.30


def _t(default: Any, help_text: str) -> Any:
    return field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class ChecklistThresholds:
    """Thresholds of the checklist. Defaults suit a small LoRA dataset; every one is stored with the
    version it judged. `None` for the agreement and near-duplicate limits means: the project's own."""

    require_attestation: bool = _t(True, "The lead must attest that the items fit the task; without it the "
                                         "task-alignment item fails.")
    off_task_warn: float = _t(0.01, "Warn when more than this share of the items was flagged off-task by an "
                                    "annotator.")
    off_task_max: float = _t(0.05, "Fail when more than this share of the items was flagged off-task.")
    min_examples_per_label: int = _t(10, "Warn when a label has fewer training examples than this (a label "
                                         "with none fails).")
    min_clusters: int = _t(3, "Warn when the embedding clusters of the items are fewer than this.")
    balance_warn: float = _t(0.2, "Warn when the rarest label's count over the most common one's is below this.")
    balance_min: float = _t(0.02, "Fail when the rarest label's count over the most common one's is below this.")
    min_agreement: float | None = _t(None, "Krippendorff's alpha the labels must reach (default: the project's "
                                           "approval threshold). Fails below; warns when only the interval's "
                                           "lower end is below.")
    agreement_resamples: int = _t(200, "Bootstrap resamples for the agreement interval.")
    min_k_labelled_share: float = _t(0.2, "Warn when fewer than this share of the items have the project's k "
                                          "labels.")
    max_suspected_share: float = _t(0.05, "Fail when more than this share of the items are suspected label "
                                          "errors left unreviewed (any warns).")
    near_duplicate_similarity: float = _t(0.95, "Cosine similarity above which two items count as "
                                                "near-duplicates (embedding path).")
    max_near_duplicate_pairs: int | None = _t(None, "Generation: near-duplicate pairs allowed in the version "
                                                    "(default: the project's setting).")
    max_near_duplicate_share: float = _t(MAX_NEAR_DUPLICATE_SHARE, "Classification: warn when more than this "
                                         "share of the items are redundant near-duplicates (same label, same "
                                         "side); conflicting labels or pairs across train/eval fail.")
    max_tokens: int = _t(2048, "The model's maximum sequence length: longer items fail the format check.")
    tokenizer: str | None = _t(None, "A locally available tokenizer (name or path) to count tokens; default: an "
                                     "approximate count (words and punctuation).")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ChecklistThresholds:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (data or {}).items() if k in known})

    @classmethod
    def help(cls) -> dict[str, str]:
        return {f.name: f.metadata.get("help", "") for f in fields(cls)}


@dataclass
class CheckItem:
    key: str
    area: str
    name: str
    status: str
    value: str  # the measurement, for people
    threshold: str  # what it was judged against
    detail: str = ""
    measured: float | None = None  # the number behind `value`, when there is one

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckItem:
        return cls(**{f.name: data.get(f.name) for f in fields(cls) if f.name in data})


@dataclass
class Measures:
    """What the checklist judges, measured on a candidate's items (see versions.measure)."""

    task_type: str
    n_items: int
    n_train: int
    n_eval: int
    project_labels: list[str] = field(default_factory=list)
    train_label_counts: dict[str, int] = field(default_factory=dict)
    label_counts: dict[str, int] = field(default_factory=dict)
    attested: bool = False
    off_task_items: int = 0
    k_labelled_items: int = 0
    overlap_k: int = 1
    adjudicated_items: int = 0
    disputed_left_out: int = 0
    unreviewed_left_out: int = 0  # generation items left out because no expert reviewed their response
    imported_final: int = 0  # generation items included with a response imported as final (no annotation)
    suspected_left: int = 0
    suspected_method: str = ""
    agreement: dict[str, Any] = field(default_factory=dict)  # alpha, low, high, reason, n_scored
    project_min_agreement: float = 0.667
    near_duplicate_pairs: int = 0
    near_duplicate_method: str = ""
    near_duplicate_conflicts: int = 0  # pairs whose two items carry different labels
    near_duplicate_cross_split: int = 0  # pairs with one item in train and the other in eval
    near_duplicate_redundant: int = 0  # items in a near-duplicate group beyond its first
    project_max_near_duplicate_pairs: int = 0
    clusters: int | None = None
    clusters_reason: str = ""
    leaking_eval: list[str] = field(default_factory=list)
    leakage_method: str = ""
    test_items: int = 0  # test items of the project compared against
    test_leaks: list[str] = field(default_factory=list)  # items duplicating a test item (exact or near)
    test_leak_method: str = ""
    missing_source: list[str] = field(default_factory=list)
    missing_licence: list[str] = field(default_factory=list)
    licences: dict[str, int] = field(default_factory=dict)
    chat_templates: dict[str, int] = field(default_factory=dict)
    invalid_chat: list[str] = field(default_factory=list)
    token_max: int = 0
    token_over: list[str] = field(default_factory=list)
    token_method: str = ""
    empty_content: list[str] = field(default_factory=list)
    unknown_labels: list[str] = field(default_factory=list)
    # Issue 12: source -> {unreviewed, audit_id, reviewed, rate, low, high} for items whose label rests
    # on a source (vote or suggestion) with no expert label; the threshold is the project's.
    source_labels: dict[str, dict[str, Any]] = field(default_factory=dict)
    project_max_source_error: float = 0.05


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def count(n: int, singular: str, plural: str | None = None) -> str:
    """"1 item", "0 items", "3 pairs": a number with its noun in the right number."""
    return f"{n} {singular if n == 1 else plural or singular + 's'}"


def _ids(ids: list[str], limit: int = 8) -> str:
    more = f" (+{len(ids) - limit} more)" if len(ids) > limit else ""
    return ", ".join(ids[:limit]) + more


def evaluate(m: Measures, t: ChecklistThresholds) -> list[CheckItem]:
    """The checklist items, in a fixed order, each judged against `t`."""
    generation = m.task_type == "generation"
    items: list[CheckItem] = []
    add = items.append

    # --- task alignment
    add(attestation_item(m.attested, t))
    rate = _share(m.off_task_items, m.n_items)
    add(CheckItem("off_task_rate", "task_alignment", "Off-task flag rate",
                  FAIL if rate > t.off_task_max else WARN if rate > t.off_task_warn else PASS,
                  f"{rate:.1%} ({m.off_task_items} of {count(m.n_items, 'item')} flagged off-task)",
                  f"warn > {t.off_task_warn:.0%}, fail > {t.off_task_max:.0%}", measured=rate))
    if generation:
        add(CheckItem("label_coverage", "task_alignment", "Label-set coverage", NA, "no label set (generation)", "—"))
    else:
        missing = [label for label in m.project_labels if m.train_label_counts.get(label, 0) == 0]
        thin = [label for label in m.project_labels if 0 < m.train_label_counts.get(label, 0) < t.min_examples_per_label]
        covered = len(m.project_labels) - len(missing)
        add(CheckItem("label_coverage", "task_alignment", "Label-set coverage",
                      FAIL if missing or not m.project_labels else WARN if thin else PASS,
                      f"{covered} of {count(len(m.project_labels), 'label')} in train",
                      f"every label in train; warn < {t.min_examples_per_label} train examples",
                      detail=("missing: " + ", ".join(missing) + ". " if missing else "")
                      + ("few examples: " + ", ".join(thin) if thin else ""),
                      measured=_share(covered, len(m.project_labels))))

    # --- diversity and coverage
    if m.clusters is None:
        add(CheckItem("clusters", "diversity", "Embedding clusters", WARN, "not measured",
                      f"warn < {t.min_clusters}", detail=m.clusters_reason))
    else:
        add(CheckItem("clusters", "diversity", "Embedding clusters", WARN if m.clusters < t.min_clusters else PASS,
                      count(m.clusters, "cluster"), f"warn < {t.min_clusters}", detail=m.clusters_reason,
                      measured=float(m.clusters)))
    if generation:
        add(CheckItem("label_balance", "diversity", "Label balance", NA, "no labels (generation)", "—"))
    else:
        counts = [m.label_counts.get(label, 0) for label in m.project_labels] or [0]
        ratio = _share(min(counts), max(counts))
        add(CheckItem("label_balance", "diversity", "Label balance",
                      FAIL if ratio < t.balance_min else WARN if ratio < t.balance_warn else PASS,
                      f"rarest / most common = {ratio:.2f}",
                      f"warn < {t.balance_warn:g}, fail < {t.balance_min:g}",
                      detail=", ".join(f"{k}: {v}" for k, v in m.label_counts.items()), measured=ratio))

    # --- label accuracy
    threshold = t.min_agreement if t.min_agreement is not None else m.project_min_agreement
    alpha, low, high = m.agreement.get("alpha"), m.agreement.get("low"), m.agreement.get("high")
    if alpha is None:
        add(CheckItem("agreement", "label_accuracy", "Agreement (Krippendorff's alpha)", WARN, "undefined",
                      f"alpha ≥ {threshold:g}", detail=m.agreement.get("reason") or "no items with two labels"))
    else:
        interval = f" [{low:.3f}, {high:.3f}]" if low is not None and high is not None else ""
        status = FAIL if alpha < threshold else WARN if (low is not None and low < threshold) else PASS
        add(CheckItem("agreement", "label_accuracy", "Agreement (Krippendorff's alpha)", status,
                      f"α = {alpha:.3f}{interval} on {count(int(m.agreement.get('n_scored') or 0), 'item')}",
                      f"alpha ≥ {threshold:g} (warn when the interval reaches below)",
                      detail=(f"{m.agreement['level']} level; " if m.agreement.get("level") else "")
                      + "measured on the project's annotations when the version was built", measured=alpha))
    k_share = _share(m.k_labelled_items, m.n_items)
    add(CheckItem("k_labels", "label_accuracy", f"Items with k={m.overlap_k} labels",
                  WARN if k_share < t.min_k_labelled_share else PASS,
                  f"{k_share:.1%} ({m.k_labelled_items} of {m.n_items})", f"warn < {t.min_k_labelled_share:.0%}",
                  measured=k_share))
    adj_share = _share(m.adjudicated_items, m.n_items)
    add(CheckItem("adjudicated", "label_accuracy", "Adjudicated by a lead", WARN if m.disputed_left_out else PASS,
                  f"{adj_share:.1%} ({count(m.adjudicated_items, 'item')})", "warn while disputed items wait",
                  detail=f"{count(m.disputed_left_out, 'disputed item')} left out of the version" if m.disputed_left_out else "",
                  measured=adj_share))
    if generation:
        add(reviewed_item(m))
    suspected = _share(m.suspected_left, m.n_items)
    add(CheckItem("suspected_errors", "label_accuracy", "Suspected label errors left",
                  FAIL if suspected > t.max_suspected_share else WARN if m.suspected_left else PASS,
                  f"{count(m.suspected_left, 'item')} ({suspected:.1%})", f"warn > 0, fail > {t.max_suspected_share:.0%}",
                  detail=m.suspected_method, measured=float(m.suspected_left)))

    for item in source_label_items(m):
        add(item)

    # --- de-duplication
    add(near_duplicate_item(m, t))

    # --- clean splits
    add(CheckItem("leakage", "clean_splits", "Eval items leaking from train", FAIL if m.leaking_eval else PASS,
                  count(len(m.leaking_eval), "eval item"), "must be 0",
                  detail=(_ids(m.leaking_eval) + " · " if m.leaking_eval else "") + m.leakage_method,
                  measured=float(len(m.leaking_eval))))
    add(CheckItem("test_leakage", "clean_splits", "Items duplicating a test item",
                  FAIL if m.test_leaks else WARN if not m.test_items else PASS,
                  f"{len(m.test_leaks)} items" if m.test_items else "no test set yet",
                  "must be 0 (cannot be overridden)",
                  detail=(_ids(m.test_leaks) + " · " if m.test_leaks else "") + (
                      m.test_leak_method if m.test_items else
                      "without a frozen test set, runs are scored on the version's own held-out split"),
                  measured=float(len(m.test_leaks))))
    if m.n_eval == 0 or m.n_train == 0:
        add(CheckItem("split_sizes", "clean_splits", "Train and eval both present", FAIL,
                      f"train {m.n_train}, eval {m.n_eval}", "both > 0"))
    else:
        add(CheckItem("split_sizes", "clean_splits", "Train and eval both present", PASS,
                      f"train {m.n_train}, eval {m.n_eval}", "both > 0"))

    # --- provenance
    gaps = sorted(set(m.missing_source) | set(m.missing_licence))
    add(CheckItem("provenance", "provenance", "Every item has a source and a licence", FAIL if gaps else PASS,
                  f"{count(len(gaps), 'item')} without" if gaps else "all items", "0 items without",
                  detail=(f"no source: {_ids(m.missing_source)}. " if m.missing_source else "")
                  + (f"no licence: {_ids(m.missing_licence)}" if m.missing_licence else ""),
                  measured=float(len(gaps))))
    add(CheckItem("licences", "provenance", "Licences", PASS if m.licences else WARN,
                  ", ".join(f"{k} ({v})" for k, v in m.licences.items()) or "none", "listed"))

    # --- format
    if generation:
        mixed = len(m.chat_templates) > 1
        add(CheckItem("chat_template", "format", "One chat template", FAIL if mixed or m.invalid_chat else PASS,
                      ", ".join(f"{k} ({v})" for k, v in m.chat_templates.items()) or "none",
                      "one template; roles alternate user/assistant and end with assistant",
                      detail=f"invalid: {_ids(m.invalid_chat)}" if m.invalid_chat else ""))
        add(CheckItem("token_lengths", "format", "Token lengths within the model's maximum",
                      FAIL if m.token_over else PASS, f"longest {m.token_max} tokens", f"≤ {t.max_tokens} tokens",
                      detail=(f"too long: {_ids(m.token_over)} · " if m.token_over else "") + m.token_method,
                      measured=float(m.token_max)))
        add(CheckItem("empty", "format", "No empty responses", FAIL if m.empty_content else PASS,
                      f"{len(m.empty_content)} empty", "0", detail=_ids(m.empty_content),
                      measured=float(len(m.empty_content))))
    else:
        add(CheckItem("empty", "format", "No empty texts", FAIL if m.empty_content else PASS,
                      f"{len(m.empty_content)} empty", "0", detail=_ids(m.empty_content),
                      measured=float(len(m.empty_content))))
        add(CheckItem("known_labels", "format", "Labels within the label set", FAIL if m.unknown_labels else PASS,
                      f"{count(len(m.unknown_labels), 'item')} outside", "0", detail=_ids(m.unknown_labels),
                      measured=float(len(m.unknown_labels))))
        add(CheckItem("token_lengths", "format", "Token lengths within the model's maximum",
                      FAIL if m.token_over else PASS, f"longest {m.token_max} tokens", f"≤ {t.max_tokens} tokens",
                      detail=(f"too long: {_ids(m.token_over)} · " if m.token_over else "") + m.token_method,
                      measured=float(m.token_max)))
    return items


def reviewed_item(m: Measures) -> CheckItem:
    """Generation: every included response was reviewed by experts (or settled by a lead), or imported
    as final by an explicit choice; items whose response nobody reviewed are left out and counted
    here (a warning: the version is sound, but smaller than the project)."""
    reviewed = m.n_items - m.imported_final
    left = m.unreviewed_left_out
    return CheckItem("reviewed_responses", "label_accuracy", "Responses reviewed", WARN if left else PASS,
                     f"{reviewed} reviewed by experts, {m.imported_final} imported as final",
                     "only reviewed or imported-as-final responses enter; warn when items are left out",
                     detail=(f"{count(left, 'item')} left out: response not reviewed" if left else
                             "no item left out for want of review"),
                     measured=float(left))


def source_label_items(m: Measures) -> list[CheckItem]:
    """One row per source whose labels stand unreviewed in the version: its audited error rate's 95%
    upper bound against the project's threshold (fails above it, and without an audit)."""
    out = []
    limit = m.project_max_source_error
    for source, info in sorted(m.source_labels.items()):
        unreviewed = int(info.get("unreviewed", 0))
        name = f"Unreviewed labels of source '{source}'"
        threshold = f"audited error rate's 95% upper bound ≤ {limit:.1%}"
        if not unreviewed:
            continue
        if info.get("rate") is None:
            out.append(CheckItem(f"source_labels:{source}", "label_accuracy", name, FAIL,
                                 f"{unreviewed} items, error rate not measured", threshold,
                                 detail="start a label audit of this source (python -m curation audit start)"))
            continue
        high = float(info["high"])
        out.append(CheckItem(f"source_labels:{source}", "label_accuracy", name, FAIL if high > limit else PASS,
                             f"{unreviewed} items; error rate {info['rate']:.1%} [{info['low']:.1%}, {high:.1%}]",
                             threshold, detail=f"audit #{info.get('audit_id')}: {info.get('reviewed')} items reviewed "
                                               "(Clopper-Pearson 95%)", measured=high))
    return out


def near_duplicate_item(m: Measures, t: ChecklistThresholds) -> CheckItem:
    """Generation: pairs against the allowed count. Classification: fails on near-duplicates that hurt
    (conflicting labels: the model is taught both; train/eval pairs: the score is inflated) and
    reports the rest as a share of redundant items, warning above `max_near_duplicate_share`."""
    if m.task_type == "generation":
        max_pairs = t.max_near_duplicate_pairs if t.max_near_duplicate_pairs is not None \
            else m.project_max_near_duplicate_pairs
        return CheckItem("near_duplicates", "deduplication", "Near-duplicate pairs left",
                         FAIL if m.near_duplicate_pairs > max_pairs else PASS, count(m.near_duplicate_pairs, "pair"),
                         f"≤ {count(max_pairs, 'pair')}", detail=m.near_duplicate_method,
                         measured=float(m.near_duplicate_pairs))
    share = _share(m.near_duplicate_redundant, m.n_items)
    hurts = m.near_duplicate_conflicts + m.near_duplicate_cross_split
    status = FAIL if hurts else WARN if share > t.max_near_duplicate_share else PASS
    return CheckItem("near_duplicates", "deduplication", "Near-duplicates", status,
                     f"{count(m.near_duplicate_pairs, 'pair')}: {m.near_duplicate_conflicts} with conflicting labels, "
                     f"{m.near_duplicate_cross_split} across train/eval; {share:.1%} of items redundant",
                     f"fail on conflicting labels or train/eval pairs; warn > {t.max_near_duplicate_share:.0%} "
                     "redundant", detail=m.near_duplicate_method, measured=float(hurts))


def attestation_item(attested: bool, t: ChecklistThresholds) -> CheckItem:
    if attested:
        status = PASS
    else:
        status = FAIL if t.require_attestation else WARN
    return CheckItem("attestation", "task_alignment", "Lead's attestation: items fit the task", status,
                     "attested" if attested else "not attested",
                     "required" if t.require_attestation else "optional",
                     detail="given when the version is approved")


def failing(items: list[CheckItem]) -> list[CheckItem]:
    return [item for item in items if item.status == FAIL]


def items_of(checklist: dict[str, Any]) -> list[CheckItem]:
    """The stored checklist's items (versions keep them as JSON)."""
    return [CheckItem.from_dict(item) for item in checklist.get("items", [])]


def overridden_summary(checklist: dict[str, Any]) -> str:
    """The checks an approval overrode, by their names with what they measured, for people:
    "near-duplicate pairs left (1 pair) and suspected label errors left (2 items (4.0%))". Empty
    when nothing was overridden; a key no longer in the checklist shows as itself."""
    by_key = {item.key: item for item in items_of(checklist)}
    parts = []
    for key in checklist.get("overridden", []) or []:
        item = by_key.get(key)
        parts.append(f"{item.name[:1].lower()}{item.name[1:]} ({item.value})" if item else str(key))
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]
