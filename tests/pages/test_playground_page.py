"""pages/playground.py: a classification adapter's label probabilities next to its base (the
linear probe), and a generation adapter chatting next to its base."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from curation.models import User
from tests.pages.helpers import by_label, logged_in, no_exception, values
from tests.pages.training_fixtures import classification_version, generation_version, tiny_models, trained  # noqa: F401


def _page():  # noqa: ANN202
    at = logged_in("lena", "lead-password")
    at.switch_page("pages/playground.py").run()
    no_exception(at)
    assert values(at.title) == ["Playground"]
    return at


def test_classification_probabilities(engine: Engine, lead: User, classification_version: int,  # noqa: F811
                                      tiny_models: dict[str, str]) -> None:  # noqa: F811
    trained(engine, lead, classification_version, tiny_models["bert"])
    at = _page()
    by_label(at.text_area, "Text to classify").input("my parcel delivery is late").run()
    by_label(at.button, "Predict").click().run()
    no_exception(at)
    assert by_label(at.metric, "Adapter's prediction").value in ("billing", "shipping")
    table = at.dataframe[0].value
    assert list(table.columns) == ["label", "adapter", "base (linear probe)"]
    assert abs(table["adapter"].sum() - 1) < 1e-4 and abs(table["base (linear probe)"].sum() - 1) < 1e-4
    # Adapter and base bars side by side (grouped), each at its own height: never stacked.
    import json

    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert chart["layout"]["barmode"] == "group"
    assert [trace["name"] for trace in chart["data"]] == ["adapter", "base (linear probe)"]
    assert chart["data"][0]["y"] == table["adapter"].tolist()[:10]


def test_generation_chat_side_by_side(engine: Engine, lead: User, generation_version: int,  # noqa: F811
                                      tiny_models: dict[str, str]) -> None:  # noqa: F811
    trained(engine, lead, generation_version, tiny_models["llama"])
    at = _page()
    at.chat_input[0].set_value("question invoice refund").run()
    no_exception(at)
    assert values(at.subheader)[:2] == ["Base", "Adapter"]
    assert values(at.text).count("question invoice refund") == 2
