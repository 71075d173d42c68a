"""The lakehouse on S3: the same commands against moto (fast) and Ceph RADOS Gateway (real), with
faults injected between the pipeline and the server."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import boto3
import pytest

from conftest import new_bucket
from fault_proxy import FaultProxy
from stedi_assets.cli import main
from test_acceptance import EXPECTED


@pytest.fixture(scope="module")
def udacity_on_s3(s3_target, udacity_landing):
    """A bucket holding the Udacity landing files, uploaded with `stedi land`."""
    bucket = new_bucket()
    with pytest.MonkeyPatch.context() as mp:
        for name, value in s3_target.env().items():
            mp.setenv(name, value)
        landing = f"s3://{bucket}/raw"
        assert main(["init", "--lake", f"s3://{bucket}/lake", "--landing", landing]) == 0
        assert main(["land", str(udacity_landing), "--landing", landing]) == 0
    return bucket


def aws(service: str):
    """A client for the server under test now (boto3.client() would reuse the first credentials it saw)."""
    return boto3.session.Session().client(service)


def cli_json(capsys, *argv) -> list[dict]:
    capsys.readouterr()
    assert main([*argv, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("policy", ["strict", "rubric"])
def test_pipeline_on_s3_reproduces_the_udacity_counts(s3_env, udacity_on_s3, policy, capsys):
    lake, landing = f"s3://{udacity_on_s3}/{policy}", f"s3://{udacity_on_s3}/raw"
    assert main(["run", "--landing", landing, "--lake", lake, "--policy", policy]) == 0
    for table, expected in EXPECTED[policy].items():
        (row,) = cli_json(capsys, "query", "--lake", lake, f"SELECT count(*) AS n FROM {table}")
        assert row["n"] == expected, f"{s3_env.name} {policy} {table}"
    capsys.readouterr()
    assert main(["check", "--lake", lake]) == 0
    assert "41 passed, 0 failed" in capsys.readouterr().out
    objects = aws("s3").list_objects_v2(Bucket=udacity_on_s3, Prefix=f"{policy}/trusted/customer_trusted/")
    assert any(o["Key"].endswith("/_current.json") for o in objects["Contents"])


def test_init_creates_bucket_and_prefixes_and_land_is_idempotent(s3_env, udacity_landing, capsys):
    bucket = new_bucket()
    assert main(["init", "--lake", f"s3://{bucket}/lake", "--landing", f"s3://{bucket}/landing"]) == 0
    keys = {o["Key"] for o in aws("s3").list_objects_v2(Bucket=bucket)["Contents"]}
    assert {"lake/landing/", "lake/trusted/", "lake/curated/", "landing/customer/", "landing/accelerometer/",
            "landing/step_trainer/"} <= keys
    capsys.readouterr()
    assert main(["land", str(udacity_landing), "--landing", f"s3://{bucket}/landing"]) == 0
    assert capsys.readouterr().out.startswith("13 uploaded, 0 already there")
    assert main(["land", str(udacity_landing), "--landing", f"s3://{bucket}/landing"]) == 0
    assert capsys.readouterr().out.startswith("0 uploaded, 13 already there")


def test_snapshots_and_rollback_on_s3(s3_env, udacity_on_s3, capsys):
    lake, landing = f"s3://{udacity_on_s3}/rollback", f"s3://{udacity_on_s3}/raw"
    for _ in range(2):
        assert main(["run", "--landing", landing, "--lake", lake, "--select", "group:landing"]) == 0
    capsys.readouterr()
    assert main(["snapshots", "landing.customer_landing", "--lake", lake]) == 0
    lines = [l for l in capsys.readouterr().out.splitlines()[2:] if l.strip()]
    assert len(lines) == 2 and lines[-1].endswith("current")
    older = lines[0].split()[0]
    assert main(["rollback", "landing.customer_landing", "--lake", lake]) == 0
    assert older in capsys.readouterr().out
    (row,) = cli_json(capsys, "query", "--lake", lake, "SELECT count(*) AS n FROM landing.customer_landing")
    assert row["n"] == 956


def test_transient_faults_are_retried(s3_env, udacity_on_s3, capsys, monkeypatch):
    with FaultProxy(s3_env.endpoint) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        proxy.mode, proxy.every = "flaky", 12           # every 12th request: 503 SlowDown
        lake = f"s3://{udacity_on_s3}/flaky"
        assert main(["run", "--landing", f"s3://{udacity_on_s3}/raw", "--lake", lake]) == 0
        assert proxy.faults > 5
        proxy.mode = "pass"
        (row,) = cli_json(capsys, "query", "--lake", lake, "SELECT count(*) AS n FROM curated.customer_curated")
        assert row["n"] == 464


def test_server_gone_mid_run_fails_in_one_line_and_leaves_the_lake_as_it_was(s3_env, udacity_on_s3, capsys,
                                                                            monkeypatch):
    lake, landing = f"s3://{udacity_on_s3}/cut", f"s3://{udacity_on_s3}/raw"
    assert main(["run", "--landing", landing, "--lake", lake]) == 0
    s3 = aws("s3")
    pointers = {o["Key"]: s3.get_object(Bucket=udacity_on_s3, Key=o["Key"])["Body"].read()
                for o in s3.list_objects_v2(Bucket=udacity_on_s3, Prefix="cut/")["Contents"]
                if o["Key"].endswith("_current.json")}
    assert len(pointers) == 9
    with FaultProxy(s3_env.endpoint) as proxy:
        env = {**os.environ, **s3_env.env(AWS_ENDPOINT_URL=proxy.endpoint, AWS_MAX_ATTEMPTS="2")}
        child = subprocess.Popen([sys.executable, "-m", "stedi_assets.cli", "run", "--landing", landing,
                                  "--lake", lake], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        while proxy.requests < 40 and child.poll() is None:   # let it get well into the run, then cut
            time.sleep(0.01)
        proxy.mode = "down"
        out, err = child.communicate(timeout=300)
    assert child.returncode != 0
    assert proxy.endpoint in out + err                     # the error names the endpoint ...
    assert s3_env.secret not in out + err                  # ... and never a credential
    after = {k: s3.get_object(Bucket=udacity_on_s3, Key=k)["Body"].read() for k in pointers}
    assert after == pointers                               # nothing was published half-way
    capsys.readouterr()
    assert main(["check", "--lake", lake]) == 0


@pytest.mark.parametrize("problem, endpoint, message", [
    ("endpoint down", "http://127.0.0.1:9", "at http://127.0.0.1:9"),
    ("missing bucket", None, "the bucket does not exist"),
])
def test_permanent_faults_are_one_clear_line(s3_env, udacity_landing, capsys, monkeypatch, problem, endpoint, message):
    if endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    lake = f"s3://{new_bucket()}/lake"
    assert main(["run", "--landing", str(udacity_landing), "--lake", lake]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and lake.split("/")[2] in err


def test_wrong_secret_is_access_denied_in_one_line(s3_env, udacity_on_s3, capsys, monkeypatch):
    if s3_env.name == "moto":
        pytest.skip("moto does not check signatures")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    assert main(["query", "--lake", f"s3://{udacity_on_s3}/strict", "SELECT 1"]) == 2
    err = capsys.readouterr().err
    assert "secret key does not match" in err or "access denied" in err
    assert "not-the-secret" not in err


def test_two_runs_at_once_do_not_corrupt_the_lake(s3_env, udacity_on_s3, capsys):
    lake, landing = f"s3://{udacity_on_s3}/concurrent", f"s3://{udacity_on_s3}/raw"
    env = {**os.environ, **s3_env.env()}
    runs = [subprocess.Popen([sys.executable, "-m", "stedi_assets.cli", "run", "--landing", landing,
                              "--lake", lake], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for _ in range(2)]
    outputs = [r.communicate(timeout=600)[0] for r in runs]
    assert [r.returncode for r in runs] == [0, 0], outputs
    capsys.readouterr()
    assert main(["check", "--lake", lake]) == 0
    for table, expected in EXPECTED["strict"].items():
        (row,) = cli_json(capsys, "query", "--lake", lake, f"SELECT count(*) AS n FROM {table}")
        assert row["n"] == expected
    locks = aws("s3").list_objects_v2(Bucket=udacity_on_s3, Prefix="concurrent/")["Contents"]
    assert not [o["Key"] for o in locks if o["Key"].endswith("_lock.json")]


def test_glue_catalog_follows_every_publish(s3_env, udacity_on_s3, capsys, monkeypatch):
    if s3_env.name != "moto":
        pytest.skip("the Glue Data Catalog is served by moto only")
    monkeypatch.setenv("STEDI_DEPLOYMENT", "aws")
    monkeypatch.setenv("STEDI_GLUE_DATABASE_PREFIX", f"t{udacity_on_s3[-6:]}")
    lake, landing = f"s3://{udacity_on_s3}/glue", f"s3://{udacity_on_s3}/raw"
    assert main(["run", "--landing", landing, "--lake", lake]) == 0
    glue = aws("glue")
    database = f"t{udacity_on_s3[-6:]}_curated"
    table = glue.get_table(DatabaseName=database, Name="machine_learning_curated")["Table"]
    first = table["Parameters"]["stedi_snapshot"]
    assert table["StorageDescriptor"]["Location"] == f"{lake}/curated/machine_learning_curated/snapshots/{first}/data/"
    assert [c["Name"] for c in table["StorageDescriptor"]["Columns"]] == [
        "customer_id", "sensorReadingTime", "distanceFromObject", "x", "y", "z"]
    assert {t["Name"] for t in glue.get_tables(DatabaseName=f"t{udacity_on_s3[-6:]}_trusted")["TableList"]} == {
        "customer_trusted", "accelerometer_trusted", "step_trainer_trusted"}

    assert main(["run", "--landing", landing, "--lake", lake, "--select", 'key:"curated/machine_learning_curated"']) == 0
    second = glue.get_table(DatabaseName=database, Name="machine_learning_curated")["Table"]
    assert second["Parameters"]["stedi_snapshot"] != first
    assert second["StorageDescriptor"]["Location"].endswith(f"/{second['Parameters']['stedi_snapshot']}/data/")
    capsys.readouterr()
    assert main(["rollback", "curated.machine_learning_curated", "--lake", lake]) == 0
    assert "re-pointed" in capsys.readouterr().out
    assert glue.get_table(DatabaseName=database, Name="machine_learning_curated")["Table"][
        "Parameters"]["stedi_snapshot"] == first


def test_aws_deployment_refuses_a_local_lake(tmp_path, monkeypatch, udacity_landing, capsys):
    monkeypatch.setenv("STEDI_DEPLOYMENT", "aws")
    assert main(["run", "--landing", str(udacity_landing), "--lake", str(tmp_path / "lake")]) == 2
    assert "needs an s3:// lake" in capsys.readouterr().err


def test_a_lake_on_s3_needs_configured_keys(s3_env, udacity_on_s3, capsys, monkeypatch):
    monkeypatch.delenv("STEDI_PSEUDONYM_KEY")
    lake = f"s3://{udacity_on_s3}/nokey"
    assert main(["run", "--landing", f"s3://{udacity_on_s3}/raw", "--lake", lake]) == 1
    assert "STEDI_PSEUDONYM_KEY is not set" in capsys.readouterr().out
    assert not [o for o in aws("s3").list_objects_v2(Bucket=udacity_on_s3, Prefix="nokey/_private/").get("Contents", [])]


def test_forget_on_s3(s3_env, udacity_on_s3, udacity_landing, capsys):
    bucket = udacity_on_s3
    landing, lake = f"s3://{bucket}/forget-landing", f"s3://{bucket}/forget"
    assert main(["land", str(udacity_landing), "--landing", landing]) == 0
    assert main(["run", "--landing", landing, "--lake", lake]) == 0
    (row,) = cli_json(capsys, "query", "--lake", lake,
                      "SELECT email, serialNumber FROM curated.customer_curated ORDER BY email LIMIT 1")
    assert main(["forget", row["email"], "--landing", landing, "--lake", lake]) == 0
    s3 = aws("s3")
    for obj in s3.list_objects_v2(Bucket=bucket, Prefix="forget-landing/")["Contents"]:
        body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().decode().lower()
        assert row["email"].lower() not in body and row["serialNumber"] not in body
    for table in ("landing.customer_landing", "trusted.customer_trusted", "curated.customer_curated"):
        (found,) = cli_json(capsys, "query", "--lake", lake,
                            f"SELECT count(*) AS n FROM {table} WHERE lower(email) = lower('{row['email']}')")
        assert found["n"] == 0
    (readings,) = cli_json(capsys, "query", "--lake", lake,
                           f"SELECT count(*) AS n FROM landing.step_trainer_landing WHERE serialNumber = '{row['serialNumber']}'")
    assert readings["n"] == 0
    capsys.readouterr()
    assert main(["check", "--lake", lake]) == 0
