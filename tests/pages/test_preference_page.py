"""pages/preference.py: a lead starts a round and reads its result; an annotator judges blind with the
A/B/T/X buttons and never sees a system name."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from curation.evaluation import preference
from curation.models import User
from tests.curation.preference_helpers import finished_run, generated_round, generation_project
from tests.pages.helpers import by_label, logged_in, markup_values, no_exception, values


def _page(username: str, password: str):  # type: ignore[no-untyped-def]
    at = logged_in(username, password)
    at.switch_page("pages/preference.py").run()
    no_exception(at)
    assert values(at.title) == ["Preference"]
    return at


def _everything_shown(at) -> str:  # type: ignore[no-untyped-def]
    texts = [t.value for t in at.text] + markup_values(at) + [str(s.options) for s in at.selectbox]
    return "\n".join(texts).lower()


def test_annotator_judges_blind_and_the_lead_reads_the_win_rate(engine: Engine, lead: User, annotator: User) -> None:
    run_id = finished_run(engine, lead, generation_project(engine, lead))
    round_id = generated_round(engine, lead, run_id, size=2, overlap_k=1)

    at = _page("anna", "annotator-password")
    assert [t.label for t in at.tabs] == ["Judge"]  # no rounds tab, no results for annotators
    assert {"Response A", "Response B"} <= set(values(at.caption))
    shown = _everything_shown(at)
    for name in ("base model", f"run #{run_id}", "adapter of", "system a"):
        assert name not in shown
    assert {t.value.split()[0] for t in at.text if t.value.endswith(("0", "1"))} >= {"adapter", "base"}
    adapter_shown_as_a = 0
    for _ in range(2):
        shown_as_a = [t.value for t in at.text if t.value.startswith(("adapter answer", "base answer"))][0]
        adapter_shown_as_a += shown_as_a.startswith("adapter")
        by_label(at.button, "A is better").click().run()
        no_exception(at)
    assert "No preference round is open for judging in this project." in values(at.info)  # k = 1: done

    at = _page("lena", "lead-password")
    assert [t.label for t in at.tabs] == ["Rounds", "Judge"]
    assert not [c for c in values(at.caption) if c in ("Response A", "Response B")]  # nothing leased by looking
    result = preference.round_result(engine, lead, round_id)
    assert by_label(at.metric, "Win rate").value == f"{result['win_rate']['value']:.3f}"
    table = at.dataframe[0].value
    assert table["#"].tolist() == [0, 1]
    assert (table["system A better"] + table["system B better"]).tolist() == [1, 1]
    assert int(table["system A better"].sum()) == adapter_shown_as_a  # "A is better" went to whichever system was shown as A
    assert any(f"run #{run_id} adapter vs base model: win rate" in c for c in values(at.caption))

    # the Runs page shows the round as part of the run's record
    at.switch_page("pages/runs.py").run()
    no_exception(at)
    assert any(i.startswith(f"Blind human preference (round {round_id}, ties count half): run #{run_id} adapter vs "
                            "base model: win rate") for i in values(at.info))


def test_lead_starts_a_round_from_the_page(engine: Engine, lead: User) -> None:
    run_id = finished_run(engine, lead, generation_project(engine, lead))
    at = _page("lena", "lead-password")
    by_label(at.number_input, "Prompts").set_value(3)
    by_label(at.button, "Start round").click().run()
    no_exception(at)
    [summary] = preference.list_rounds(engine, lead)
    assert f"Round {summary.id} started: its responses are being generated in the background." in values(at.success)
    assert (summary.run_id, summary.system_b, summary.size) == (run_id, "base model", 3)
    # (its worker fails here: the run row has no adapter folder; the page then says so)


def test_classification_project_says_so(engine: Engine, lead: User, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.curation.test_versions import make_project

    make_project(engine, lead, tmp_path)
    at = _page("lena", "lead-password")
    assert any("classification project" in i for i in values(at.info))
