"""Privacy by construction: erasure reaches every file of the lake, re-delivered data of an erased
person is dropped at landing, revocation takes effect, keys are required where the lake is shared."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
from conftest import read_table, restored_afterwards, run_pipeline, write_landing
from erasure_helpers import belongs_to, files_naming

from stedi_assets.cli import main
from stedi_assets.generator import BASE_TIME_MS, DEFECTS, generate_landing
from stedi_assets.identity import identity_key, pseudonym
from stedi_assets.privacy.keys import pseudonym_key
from stedi_assets.storage.lake import open_lake
from stedi_assets.zones import TABLES


def all_rows(lake: Path) -> dict[str, Counter]:
    """Every published table's rows (data and rejected parts) as multisets."""
    found = {}
    for spec in TABLES:
        for part in spec.parts:
            rows = read_table(lake, spec.zone, spec.name, part)
            found[f"{spec.qualified_name}/{part}"] = Counter(json.dumps(r, sort_keys=True, default=str) for r in rows)
    return found


def person_of(lake: Path) -> tuple[str, str]:
    """A curated customer with step readings: (e-mail, serial)."""
    customer = sorted(read_table(lake, "curated", "customer_curated"), key=lambda r: r["email"])
    serials = {r["serialNumber"] for r in read_table(lake, "trusted", "step_trainer_trusted")}
    chosen = next(r for r in customer if r["serialNumber"] in serials)
    return chosen["email"], chosen["serialNumber"]


@pytest.fixture(params=["udacity", "generated"])
def landing_copy(request, tmp_path, udacity_landing) -> Path:
    """A landing tree that erasure may rewrite: a copy of the Udacity data, or generated with every defect."""
    target = tmp_path / "landing"
    if request.param == "udacity":
        shutil.copytree(udacity_landing, target)
    else:
        generate_landing(target, customers=150, seed=3, defects=DEFECTS)
    return target


def test_forget_erases_a_person_everywhere_and_nothing_else(landing_copy, tmp_path, capsys):
    lake = tmp_path / "lake"
    assert run_pipeline(landing_copy, lake).success
    assert run_pipeline(landing_copy, lake).success  # a second run: older snapshots of everything
    email, _ = person_of(lake)
    key = identity_key(email)
    serials = {
        r["serialNumber"] for r in read_table(lake, "landing", "customer_landing") if identity_key(r["email"]) == key
    }
    ml_id = pseudonym(pseudonym_key(open_lake(str(lake))), key)
    needles = [key, *serials]
    assert files_naming(lake, needles) and files_naming(landing_copy, needles)  # there before
    before = all_rows(lake)

    assert main(["forget", email, "--landing", str(landing_copy), "--lake", str(lake)]) == 0
    out = capsys.readouterr().out
    assert "erased 1 people" in out and key not in out.lower() and not any(s in out for s in serials)

    assert files_naming(lake, needles) == []  # every zone, quarantine, snapshot, manifest and catalog
    assert files_naming(landing_copy, needles) == []  # and the landing files themselves
    after = all_rows(lake)
    for table, rows in before.items():  # everybody else is untouched: equality, not substrings
        kept = Counter(
            {
                r: n
                for r, n in rows.items()
                if not belongs_to(json.loads(r), key, serials) and json.loads(r).get("customer_id") != ml_id
            }
        )
        assert after[table] == kept, table
    assert sum(before["curated.machine_learning_curated/data"].values()) > sum(
        after["curated.machine_learning_curated/data"].values()
    )
    assert main(["check", "--lake", str(lake)]) == 0  # erasure, consent, reconciliation all hold


def test_data_redelivered_for_an_erased_person_is_dropped_at_landing(tmp_path, udacity_landing, capsys):
    landing, lake = tmp_path / "landing", tmp_path / "lake"
    shutil.copytree(udacity_landing, landing)
    assert run_pipeline(landing, lake).success
    email, serial = person_of(lake)
    original = landing / "customer" / "landing" / "customer-1691348231425.json"
    backup = original.read_bytes()
    assert main(["forget", email, "--landing", str(landing), "--lake", str(lake)]) == 0
    broken = json.dumps({"email": f" {email.upper()} ", "registrationDate": "soon"}).encode() + b"\n"  # invalid
    (landing / "customer" / "landing" / "customer-redelivered.json").write_bytes(backup + broken)  # sent again

    result = run_pipeline(landing, lake)
    assert result.success  # an invalid line of theirs does not block landing
    rejected = read_table(lake, "landing", "rejected")
    erased = [r for r in rejected if r["reason"] == "erased"]
    assert len(erased) == 2 and {r["raw"] for r in erased} == {""}  # counted, with no trace of the person
    assert email not in json.dumps(read_table(lake, "landing", "customer_landing"))
    assert open_lake(str(lake)).current("landing", "customer_landing").extra["erased_lines"] == 2
    register = "".join(p.read_text() for p in (lake / "_private" / "erasures").glob("*.json"))
    assert register and email.lower() not in register.lower() and serial not in register  # keyed hashes only


def test_revocation_removes_a_customer_from_trusted_and_curated_on_the_next_run(tmp_path, udacity_landing):
    landing, lake = tmp_path / "landing", tmp_path / "lake"
    shutil.copytree(udacity_landing, landing)
    assert run_pipeline(landing, lake).success
    email, _ = person_of(lake)
    record = next(r for r in read_table(lake, "landing", "customer_landing") if r["email"] == email)
    revoked = {k: v for k, v in record.items() if k not in ("source_file", "source_line")}
    revoked.update(lastUpdateDate=record["lastUpdateDate"] + 1, shareWithResearchAsOfDate=None)
    (landing / "customer" / "landing" / "customer-revocation.json").write_text(json.dumps(revoked) + "\n")

    assert run_pipeline(landing, lake).success
    key = email.lower()
    for zone, table, column in [
        ("trusted", "customer_trusted", "email"),
        ("trusted", "accelerometer_trusted", "user"),
        ("curated", "customer_curated", "email"),
        ("trusted", "step_trainer_trusted", "customer_key"),
    ]:
        assert not [r for r in read_table(lake, zone, table) if r[column].strip(" ").lower() == key], table


def test_pii_columns_are_tagged_in_the_dagster_column_schema():
    from stedi_assets.assets import column_schema
    from stedi_assets.zones import table

    tagged = {c.name for c in column_schema(table("customer_trusted")).columns if c.tags.get("pii") == "true"}
    assert {"email", "customerName", "phone", "birthDay", "serialNumber"} <= tagged
    ml = column_schema(table("machine_learning_curated"), "strict")
    assert not [c.name for c in ml.columns if c.tags.get("pii")]


def test_key_rotation_re_pseudonymizes_and_forget_drops_old_key_snapshots(
    tmp_path, udacity_landing, monkeypatch, capsys
):
    landing, lake = tmp_path / "landing", tmp_path / "lake"
    shutil.copytree(udacity_landing, landing)
    monkeypatch.setenv("STEDI_PSEUDONYM_KEY", "old-key")
    assert run_pipeline(landing, lake).success
    old_ids = {r["customer_id"] for r in read_table(lake, "curated", "machine_learning_curated")}
    monkeypatch.setenv("STEDI_PSEUDONYM_KEY", "new-key")
    assert run_pipeline(landing, lake).success
    new_ids = {r["customer_id"] for r in read_table(lake, "curated", "machine_learning_curated")}
    assert old_ids and new_ids and not old_ids & new_ids
    email, _ = person_of(lake)
    assert main(["forget", email, "--landing", str(landing), "--lake", str(lake)]) == 0
    assert "dropped (built with an older pseudonym key)" in capsys.readouterr().out
    (kept,) = open_lake(str(lake)).snapshots("curated", "machine_learning_curated")
    on_disk = {
        p.relative_to(lake).as_posix()
        for p in (lake / "curated" / "machine_learning_curated" / "data").rglob("*.parquet")
    }
    assert on_disk == set(kept.files["data"])  # the old-key snapshots' files are physically gone


def test_audit_reports_coverage_and_exclusions(tmp_path, udacity_landing, capsys):
    landing, lake = tmp_path / "landing", tmp_path / "lake"
    shutil.copytree(udacity_landing, landing)
    assert run_pipeline(landing, lake).success
    capsys.readouterr()
    assert main(["audit", "--lake", str(lake)]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[2:]}
    assert "482 customers" in rows["trusted.customer_trusted"]
    assert rows["trusted.customer_trusted"].split()[-1] == "474"  # 956 customers, 482 consented
    assert "464 customers" in rows["curated.customer_curated"]
    assert "0 people erased" in rows["(erasure"]
    email, _ = person_of(lake)
    assert main(["forget", email, "--landing", str(landing), "--lake", str(lake)]) == 0
    capsys.readouterr()
    assert main(["audit", "--lake", str(lake)]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[2:]}
    assert "1 people erased" in rows["(erasure"] and "463 customers" in rows["curated.customer_curated"]


# -- Dagster's own records: the run history outlives every erasure, so personal data never enters it ----

HISTORY_PEOPLE = (
    {
        "customerName": "Ottoline Vantongeren",
        "email": "Ottoline.V@example.net",
        "phone": "(801) 555-0147",
        "birthDay": "1971-02-03",
        "serialNumber": "0771e0a1-7e57-4d00-9000-00000000a11e",
    },
    {
        "customerName": "Perpetua Okonkwo",
        "email": "p.okonkwo@example.org",
        "phone": "(801) 555-0193",
        "birthDay": "1984-11-30",
        "serialNumber": "0771e0a1-7e57-4d00-9000-00000000b0b0",
    },
)


def history_landing(root: Path) -> Path:
    """Generated landing with every defect, plus HISTORY_PEOPLE: consenting customers with readings that reach
    the ML table, and quarantined lines that hold their e-mail, name and phone (the phone also as a number)."""
    generate_landing(root, customers=30, seed=11, defects=DEFECTS)
    start = BASE_TIME_MS + 10 * 86_400_000
    times = [start + 1000 * i for i in range(1, 6)]
    lines: dict[str, list] = {"customer": [], "accelerometer": [], "step_trainer": []}
    for person in HISTORY_PEOPLE:
        record = {**person, "registrationDate": start, "lastUpdateDate": start, "shareWithResearchAsOfDate": start}
        digits = int("".join(c for c in person["phone"] if c.isdigit()))
        lines["customer"] += [record, {**record, "registrationDate": "soon"}, {**record, "phone": digits}]
        lines["accelerometer"] += [
            {"user": person["email"], "timestamp": t, "x": 1.0, "y": 0.0, "z": -1.0} for t in times
        ]
        lines["accelerometer"].append({"user": person["email"], "timestamp": "late", "x": 1.0, "y": 0.0, "z": -1.0})
        lines["step_trainer"] += [
            {"sensorReadingTime": t, "serialNumber": person["serialNumber"], "distanceFromObject": 200.0} for t in times
        ]
    for source, source_lines in lines.items():
        write_landing(root, source, source_lines, name="history.json")
    return root


def personal_needles(person: dict) -> list[str]:
    first, last = person["customerName"].split()
    digits = "".join(c for c in person["phone"] if c.isdigit())
    return [person["email"], first, last, person["phone"], digits, person["birthDay"], person["serialNumber"]]


@pytest.mark.slow  # a whole run, check and forget in a Dagster instance: end to end
def test_dagster_home_holds_no_personal_data_after_run_check_and_forget(tmp_path, monkeypatch, capfd):
    home = tmp_path / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    landing, lake = history_landing(tmp_path / "landing"), tmp_path / "lake"
    where = ["--landing", str(landing), "--lake", str(lake)]
    assert main(["run", *where]) == 0
    assert main(["check", "--lake", str(lake)]) == 0
    emails = {identity_key(r["email"]) for r in read_table(lake, "landing", "customer_landing")}
    emails |= {identity_key(r["user"]) for r in read_table(lake, "landing", "accelerometer_landing")}
    quarantined = [r["raw"] for r in read_table(lake, "landing", "rejected")]
    forgotten, kept = HISTORY_PEOPLE
    assert len([raw for raw in quarantined if forgotten["email"] in raw]) == 3  # the data has what we look for
    assert {forgotten["email"].lower(), kept["email"]} <= emails and len(emails) > 30
    assert main(["forget", forgotten["email"], *where]) == 0

    # the history is there and readable: materializations, check results, zlib-compressed job snapshots
    assert files_naming(home, ["dagster/row_count"]) and files_naming(home, ["rows_violating_consent"])
    assert files_naming(home, ["machine_learning_curated"])
    assert files_naming(home, personal_needles(forgotten)) == []  # not the erased person
    assert files_naming(home, [*personal_needles(kept), *emails]) == []  # nor anybody else
    out, err = capfd.readouterr()
    printed = (out + err).lower()
    assert not [n for n in [*personal_needles(forgotten), *personal_needles(kept), *emails] if n.lower() in printed]


def test_a_preview_masks_personal_and_unknown_columns_and_keeps_the_shape(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from stedi_assets.assets import MASK, preview
    from stedi_assets.zones import table

    lake = open_lake(str(tmp_path / "lake"))
    (tmp_path / "lake").mkdir(exist_ok=True)
    rows = {"email": ["ann@x.com", None], "phone": ["8015550147", "1"], "lastUpdateDate": [5, 6], "note": ["Ann", "B"]}
    pq.write_table(pa.table(rows), tmp_path / "lake" / "f.parquet")
    shown = preview(lake, table("customer_trusted"), ["f.parquet"]).value
    assert shown.splitlines() == [
        "| email | phone | lastUpdateDate | note |",
        "| --- | --- | --- | --- |",
        f"| {MASK} | {MASK} | 5 | {MASK} |",  # pii columns and a column the contract does not know
        f"|  | {MASK} | 6 | {MASK} |",  # a null stays visible: the shape, not the value
    ]


def test_the_private_area_is_0700_its_files_0600_and_key_messages_read_well(tmp_path, monkeypatch, caplog):
    import logging
    import os
    import stat

    from stedi_assets.privacy.keys import erasure_key
    from stedi_assets.privacy.register import ErasureRegister

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    monkeypatch.delenv("STEDI_PSEUDONYM_KEY", raising=False)
    monkeypatch.delenv("STEDI_ERASURE_KEY", raising=False)
    previous = os.umask(0o022)  # the usual umask, which makes 0755 folders and 0644 files
    try:
        root = tmp_path / "lake"
        lake = open_lake(str(root))
        with caplog.at_level(logging.WARNING, logger="stedi_assets.privacy.keys"):
            pseudonym_key(lake)
            erasure_key(lake)
        register = ErasureRegister.load(lake, for_update=True)
        erasure = register.record({"someone@example.com"}, set(), {})
        register.save(lake, erasure)
        private = root / "_private"
        assert mode(private) == 0o700 and mode(root) == 0o755  # only the private area is closed
        assert sorted(p.name for p in private.iterdir()) == ["erasure_key", "erasures", "pseudonym_key"]
        assert mode(private / "erasures") == 0o700
        files = [private / "erasure_key", private / "pseudonym_key", private / "erasures" / f"{erasure.id}.json"]
        assert [mode(p) for p in files] == [0o600] * 3
        assert "generated a pseudonym key" in caplog.text and "generated an erasure-register key" in caplog.text
        assert "a erasure" not in caplog.text

        private.chmod(0o755)  # a lake an older version made: tightened the next time a key is read
        (private / "pseudonym_key").chmod(0o644)
        pseudonym_key(lake)
        assert mode(private) == 0o700 and mode(private / "pseudonym_key") == 0o600
    finally:
        os.umask(previous)


# -- a full disk during `stedi forget`: one line, and the erasure resumes on the next command ------------


@pytest.fixture(scope="module")
def people_lake(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("disk_full")
    assert run_pipeline(history_landing(root / "landing"), root / "lake").success
    return root


def disk_full(*args, **kwargs):
    import errno
    import os

    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def duckdb_disk_full(*args, **kwargs):
    import duckdb

    raise duckdb.IOException('IO Error: Could not write file "part.parquet": No space left on device')


@pytest.mark.slow  # three whole runs, each with a failed and a resumed erasure
@pytest.mark.parametrize(
    "where, resume",
    [("register", "forget again"), ("landing", "forget"), ("lake", "run")],
)
def test_a_full_disk_during_forget_prints_one_line_and_the_next_command_finishes_the_erasure(
    people_lake, monkeypatch, capsys, where, resume
):
    from stedi_assets.privacy.forget import _Eraser
    from stedi_assets.storage.stores import LocalStore

    person = HISTORY_PEOPLE[0]
    monkeypatch.setenv("STEDI_ERASURE_KEY", "register-key")  # no "generated a key" warning beside the line
    with restored_afterwards(people_lake) as root:
        landing, lake = root / "landing", root / "lake"
        where_args = ["--landing", str(landing), "--lake", str(lake)]
        needles = [person["email"], person["serialNumber"]]
        assert files_naming(landing, needles) and files_naming(lake, needles)
        register = lake / "_private" / "erasures"
        with monkeypatch.context() as patch:
            if where == "register":  # recording the erasure fails
                patch.setattr(LocalStore, "write_private", disk_full)
            elif where == "landing":  # rewriting a landing file fails
                real = LocalStore.write_atomic
                patch.setattr(
                    LocalStore,
                    "write_atomic",
                    lambda store, rel, data: disk_full() if store.root == landing else real(store, rel, data),
                )
            else:  # DuckDB cannot write a table's rewritten data file
                patch.setattr(_Eraser, "_rewrite", duckdb_disk_full)
            capsys.readouterr()
            assert main(["forget", person["email"], *where_args]) == 2
            out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1 and err.startswith("stedi: error: the erasure ")
        assert "No space left on device" in err and person["email"].lower() not in err.lower()
        if where == "register":
            assert "nothing was erased" in err and not list(register.glob("*.json"))
            assert files_naming(landing, needles)  # untouched
        else:
            assert "it stays pending" in err
            assert [json.loads(e.read_text())["state"] for e in register.glob("*.json")] == ["pending"]

        if resume == "forget again":
            assert main(["forget", person["email"], *where_args]) == 0
            assert "erased 1 people" in capsys.readouterr().out
        elif resume == "forget":
            assert main(["forget", *where_args]) == 0
            assert "finished a pending erasure: 1 people" in capsys.readouterr().out
        else:
            assert main(["run", *where_args]) == 0
            assert "finished 1 pending erasure(s) first" in capsys.readouterr().out
        assert [json.loads(e.read_text())["state"] for e in register.glob("*.json")] == ["done"]
        assert files_naming(landing, needles) == [] and files_naming(lake, needles) == []
        assert files_naming(landing, [HISTORY_PEOPLE[1]["email"]])  # only them
        assert main(["check", "--lake", str(lake)]) == 0


def test_the_audit_counts_rubric_consent_by_the_identity_key(tmp_path):
    """Regression: the audit keyed the rubric's consenting e-mails with Python's str.lower(), which turns a
    final Σ into ς where the identity key has σ: one customer's two spellings counted as two consenting
    customers, and "no consent" came out negative."""
    import dagster as dg

    from stedi_assets.privacy.report import coverage
    from stedi_assets.storage.runs import default_view

    landing, root = tmp_path / "landing", tmp_path / "lake"
    record = {"customerName": "O", "registrationDate": 1, "shareWithResearchAsOfDate": 1}
    write_landing(
        landing,
        "customer",
        [
            {**record, "email": "ΟΔΥΣΣΕΥΣ@x.com", "serialNumber": "s1", "lastUpdateDate": 1},
            {**record, "email": "οδυσσευσ@x.com", "serialNumber": "s2", "lastUpdateDate": 2},
        ],
    )
    selection = dg.AssetSelection.assets(["landing", "customer_landing"], ["trusted", "customer_trusted"])
    assert run_pipeline(landing, root, "rubric", selection=selection).success
    lake = open_lake(str(root))
    found = {c.table: c for c in coverage(lake, default_view(lake)[1])}
    assert found["trusted.customer_trusted"].no_consent == 0


PERSON, OTHER = "case@p.com", "showcase@p.com"  # the register's unit tests: identity keys


def test_two_commands_erasing_at_once_keep_both_erasures(tmp_path, monkeypatch):
    # Two `stedi forget`s at once: each loads the register before the other saves. One file rewritten whole
    # lost the first erasure when the second saved; each erasure now has its own file.
    from stedi_assets.privacy.register import ErasureRegister

    monkeypatch.setenv("STEDI_ERASURE_KEY", "register-key")
    lake = open_lake(str(tmp_path / "lake"))
    first, second = ErasureRegister.load(lake, for_update=True), ErasureRegister.load(lake, for_update=True)
    mine = first.record({PERSON}, {"S-PERSON"}, {})
    theirs = second.record({OTHER}, set(), {})
    first.save(lake, mine)
    second.save(lake, theirs)
    first.finish(mine.id)  # from its copy, which never saw the other erasure
    first.save(lake, mine)
    register = ErasureRegister.load(lake)
    assert {e.id: e.state for e in register.erasures} == {mine.id: "done", theirs.id: "pending"}
    assert register.landing_filter("step_trainer")((1, "S-PERSON", 1.0))
    assert register.landing_filter("customer")(("n", OTHER, None, None, "S-X", 1, 1, None, None, None))


def test_an_erasure_of_a_version_2_register_is_finished_in_a_file_of_its_own(tmp_path, monkeypatch):
    from stedi_assets.privacy.register import LEGACY_REGISTER, ErasureRegister

    monkeypatch.setenv("STEDI_ERASURE_KEY", "register-key")
    lake = open_lake(str(tmp_path / "lake"))
    old = ErasureRegister.load(lake, for_update=True)
    erasure = old.record({PERSON}, set(), {})
    legacy = json.dumps({"version": 2, "identities": erasure.identities, "erasures": [erasure.to_json()]})
    (tmp_path / "lake" / "_private").mkdir(parents=True)
    (tmp_path / "lake" / LEGACY_REGISTER).write_text(legacy)
    (pending,) = ErasureRegister.load(lake).pending()
    register = ErasureRegister.load(lake)
    register.finish(pending.id)
    register.save(lake, register.erasures[0])
    assert (tmp_path / "lake" / LEGACY_REGISTER).read_text() == legacy  # never written again
    again = ErasureRegister.load(lake)
    assert [(e.id, e.state) for e in again.erasures] == [(erasure.id, "done")] and not again.pending()
    assert again.identities == set(erasure.identities)
