"""A lead builds a version candidate of the demo reply project in a real Chromium, approves it with the
attestation and an override reason for the failing near-duplicate check, and downloads its export
(fixtures: tests/e2e/conftest.py)."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from curation.data.bootstrap import DEMO_GENERATION
from tests.e2e.conftest import log_in, open_page, select_tab

pytestmark = pytest.mark.browser


def test_lead_approves_a_version_and_exports_it(page: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    log_in(page, "lead", "lead-demo")
    main = open_page(page, DEMO_GENERATION, "Versions")
    expect(main.get_by_role("heading", name="Dataset versions")).to_be_visible()
    select_tab(main, "Build candidate", main.get_by_role("button", name="Build candidate"))
    main.get_by_role("button", name="Build candidate").click()
    built = main.get_by_text(re.compile(r"Built candidate v(\d+) with 94 items"))
    expect(built).to_be_visible(timeout=120_000)  # the first build loads the embedding model
    number = re.search(r"v(\d+)", built.inner_text()).group(1)  # type: ignore[union-attr]

    # The demo replies hold near-duplicate macros: that check fails, so the lead overrides it in writing.
    select_tab(main, "Checklist and approval", main.get_by_text("Failing checks block approval"))
    main.get_by_text("I attest that these items fit the project's task").click()
    main.get_by_role("textbox", name="Approval note").fill("first reply set")
    reason = "template macros are near-duplicates by design"
    main.get_by_role("textbox", name="Override reason (needed when a check fails)").fill(reason)
    main.get_by_role("button", name="Approve version").click()
    approved = main.get_by_text(re.compile(rf"Approved v{number} \(SHA-256 ([0-9a-f]{{64}})\)"))
    expect(approved).to_be_visible()
    digest = re.search(r"[0-9a-f]{64}", approved.inner_text()).group(0)  # type: ignore[union-attr]
    checklist_tab = main.get_by_role("tabpanel", name="Checklist and approval")
    select_tab(main, "Checklist and approval", checklist_tab.get_by_text(f"Reason: {reason}"))  # shown with it

    select_tab(main, "Export", main.get_by_role("button", name="Prepare export"))
    main.get_by_role("button", name="Prepare export").click()
    download_button = main.get_by_role("button", name=re.compile(rf"Download .*-v{number}\.zip"))
    expect(download_button).to_be_visible()
    with page.expect_download() as info:
        download_button.click()
    download = info.value
    assert download.suggested_filename.endswith(f"-v{number}.zip")
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    with zipfile.ZipFile(target) as archive:
        names = set(archive.namelist())
        card = archive.read("README.md").decode("utf-8")
    assert {"hf/dataset_dict.json", "jsonl/train.jsonl", "jsonl/eval.jsonl", "parquet/train.parquet"} <= names
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["curation"]["content_sha256"] == digest
    assert meta["curation"]["approved_by"] == "lead" and meta["curation"]["approval_note"] == "first reply set"
    assert meta["license"] == ["cc0-1.0"] and meta["curation"]["override_reason"] == reason
    assert "near_duplicates" in meta["curation"]["overridden_checks"]
