"""A check's outcome stands for the next snapshot when everything it read is the same (checks/memo.py)."""

from __future__ import annotations

import dagster as dg
import pytest
from conftest import checks_of, run_pipeline, write_landing
from test_incremental import consenting_customer, generated_landing

from stedi_assets.assets import TABLE_ASSETS
from stedi_assets.checks import CHECKS, memo
from stedi_assets.resources import local_resources

MARK = "same_inputs_as_snapshot"  # the metadata key of an outcome that stood


@pytest.fixture
def landing(tmp_path, monkeypatch):
    monkeypatch.setenv("STEDI_PSEUDONYM_KEY", "test-pseudonym-key")
    return generated_landing(tmp_path)


def outcomes(result) -> dict[tuple[str, str], tuple[bool, dict]]:
    return {key: (e.passed, {k: v.value for k, v in e.metadata.items()}) for key, e in checks_of(result).items()}


def stood(result) -> set[tuple[str, str]]:
    """The (table, check) pairs whose outcome stood without the check running."""
    return {key for key, (_, metadata) in outcomes(result).items() if MARK in metadata}


@pytest.mark.parametrize("policy", ["rubric", "strict"])
def test_over_an_unchanged_landing_every_reusable_outcome_stands_as_it_was(landing, tmp_path, policy):
    lake = tmp_path / "lake"
    first = outcomes(run_pipeline(landing, lake, policy=policy))
    second = run_pipeline(landing, lake, policy=policy)
    assert second.success
    reusable = {key for key in first if CHECKS[key[1]].reusable}
    assert stood(second) == reusable
    for key, (passed, metadata) in outcomes(second).items():
        if key in reusable:
            assert (passed, {k: v for k, v in metadata.items() if k != MARK}) == first[key], key


def test_a_check_runs_again_when_anything_it_read_changed(landing, tmp_path):
    """A new customer record without consent changes customer_landing only: no trusted or curated table changes
    (rubric), but every consent check reads the register made from customer_landing, so each runs again. A check
    that reads only its own table's files (customer_curated's unique_customers) still stands."""
    lake = tmp_path / "lake"
    assert run_pipeline(landing, lake, policy="rubric").success
    person = consenting_customer(landing)
    stranger = {**person, "email": "Stranger." + person["email"], "shareWithResearchAsOfDate": None}
    write_landing(landing, "customer", [stranger], name="stranger.json")
    result = run_pipeline(landing, lake, policy="rubric")
    assert result.success
    ran = set(outcomes(result)) - stood(result)
    consent = {key for key in outcomes(result) if key[1] == "consent"}
    assert consent and consent <= ran
    assert ("customer_curated", "unique_customers") in stood(result)
    assert ("customer_landing", "row_count") in ran  # its own files changed


def test_other_code_runs_every_check_again(landing, tmp_path, monkeypatch):
    lake = tmp_path / "lake"
    assert run_pipeline(landing, lake, policy="rubric").success
    monkeypatch.setattr(memo, "code_fingerprint", lambda: "another version of the project")
    result = run_pipeline(landing, lake, policy="rubric")
    assert result.success and stood(result) == set()


def test_a_checks_only_run_runs_every_check(landing, tmp_path):
    """`stedi check` reads every file (that is how it finds one damaged in place): no outcome stands there."""
    lake = tmp_path / "lake"
    assert run_pipeline(landing, lake, policy="rubric").success
    assert run_pipeline(landing, lake, policy="rubric").success  # its outcomes stood
    checks_only = dg.materialize(
        TABLE_ASSETS,
        resources=local_resources(landing=str(landing), lake=str(lake), policy="rubric"),
        selection=dg.AssetSelection.all_asset_checks(),
    )
    assert checks_only.success and outcomes(checks_only) and stood(checks_only) == set()
