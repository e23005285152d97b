"""AppTest set-up shared by the page tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from streamlit.runtime.pages_manager import PagesManager


@pytest.fixture(autouse=True)
def navigation_runs_main_script(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run app.py on every AppTest run, as the real server does.

    AppTest resets `PagesManager.uses_pages_directory` before each run, so with a `pages/` folder
    next to app.py every run after the first executes the page file alone (the old pages-folder
    mode): app.py's sidebar (user, Log out, project picker) and its st.navigation would not run.
    The server clears the flag for good on the first st.navigation call; this does the same.
    """
    original = PagesManager.__init__

    def init(self: PagesManager, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)
    yield
