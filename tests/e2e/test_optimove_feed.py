"""Optimove's daily batch channel on `dig local`, as ES Loyalty and an operator use it: a 4,000-member
extract uploaded, its day built with `dig feed run` and loaded by the simulated Optimove; the next
day's extract, with 200 members changed, 40 new and 3 bad rows, delivering exactly those 240; the
day built again, byte for byte the same. (10,000 members until stop 19: the behaviour is the same,
and make test's 15 minutes are not.)"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import uuid
from typing import Any

import httpx

from connectors.optimove.feed.rows import optimove_datetime
from connectors.optimove.local import FEED_BUCKET
from tests.e2e.conftest import LocalStackProcess
from tests.e2e.test_files import aws, client, dig, file_done

MEMBERS = 4_000
CHANGED, NEW = 200, 40  # day 2: a twentieth of day 1's rows, far below its count (Optimove's check)
PREFIX = "dig/"


def extract_csv(run: str, members: range, *, changed: int = 0, bad: int = 0) -> bytes:
    lines = ["memberId,country,lifetimePoints,enrolledAt,LastUpdated"]
    for i in members:
        points = 1000 + i + (1 if i < changed else 0)
        lines.append(f"FEED-{run}-{i:05d},US,{points},2024-01-31,2026-11-30T10:00:00Z")
    for i in range(bad):  # refused at validation: reported in the file's report, never sent
        lines.append(f"FEED-{run}-BAD-{i},US,many,2024-13-45,2026-11-30T10:00:00Z")
    return ("\n".join(lines) + "\n").encode()


def upload_extract(stack: LocalStackProcess, data: bytes) -> str:
    declared = stack.http.post(
        "/v1/files",
        json={
            "kind": "extract",
            "name": "memberAccounts",
            "format": "csv",
            "compression": "gzip",
            "sha256": hashlib.sha256(data).hexdigest(),
            "contentLength": len(data),
        },
    ).json()
    upload = declared["upload"]
    assert httpx.put(upload["url"], content=data, headers=upload["headers"], timeout=60).status_code == 200
    return str(declared["fileId"])


def recorded_day(stack: LocalStackProcess, file_id: str) -> str:
    """The feed day the extract's arrival was recorded for (once Optimove's connector got FILE_READY)."""

    def found() -> str | None:
        done = dig(stack, "feed", "status", "--days", "6", "--json")
        assert done.returncode == 0, done.stderr
        for day in json.loads(done.stdout):
            if any(e["fileId"] == file_id for e in day["extracts"]):
                return str(day["day"])
        return None

    return str(stack.wait_until(found, f"extract {file_id} recorded for a feed day", 120))


def day_objects(s3: Any, day: str) -> dict[str, bytes]:
    listed = s3.list_objects_v2(Bucket=FEED_BUCKET, Prefix=f"{PREFIX}{day}/").get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=FEED_BUCKET, Key=o["Key"])["Body"].read() for o in listed}


def customer_rows(objects: dict[str, bytes], run: str) -> dict[str, dict[str, str]]:
    import csv

    rows = {}
    for key, body in objects.items():
        if "/customers/" in key:
            for row in csv.DictReader(io.StringIO(gzip.decompress(body).decode())):
                if row["CustomerID"].startswith(f"FEED-{run}-"):
                    rows[row["CustomerID"]] = row
    return rows


def table_days(stack: LocalStackProcess, run: str) -> dict[str, int]:
    """This run's rows in the shared Snowflake table, by the day that last changed each."""
    answer = stack.http.post("/_sim/optimove/snowflake/OPTIMOVE_CUSTOMERS", json={"keyPrefix": f"FEED-{run}-"})
    return dict(answer.json()["byDay"])


def build(stack: LocalStackProcess, day: str) -> None:
    done = dig(stack, "feed", "run", "--date", day)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{day}:" in done.stdout


def test_day_one_sends_every_member_day_two_exactly_the_changed_and_new_and_a_rebuild_is_identical(
    local_stack: LocalStackProcess,
) -> None:
    run = uuid.uuid4().hex[:6]
    s3 = client(aws(local_stack), "s3")

    first = upload_extract(local_stack, gzip.compress(extract_csv(run, range(MEMBERS)), mtime=0))
    day1 = recorded_day(local_stack, first)
    build(local_stack, day1)
    objects1 = day_objects(s3, day1)
    manifest_body = objects1[f"{PREFIX}{day1}/manifest.json"]
    # The completion marker names the manifest it completes.
    assert objects1[f"{PREFIX}{day1}/_SUCCESS"] == hashlib.sha256(manifest_body).hexdigest().encode() + b"\n"
    sent1 = customer_rows(objects1, run)
    assert len(sent1) == MEMBERS
    # LastUpdated: when DIG saw the extract complete, in Optimove's datetime format.
    completed = file_done(local_stack, first)["timings"]["completedAt"]
    assert sent1[f"FEED-{run}-00007"] == {
        "CustomerID": f"FEED-{run}-00007",
        "LIFETIME_POINTS": "1007",
        "ENROLLED_AT": "2024-01-31",
        "COUNTRY": "US",
        "LastUpdated": optimove_datetime(completed),
    }
    manifest = json.loads(manifest_body)
    assert first in manifest["extracts"]
    assert {p["dataSet"] for p in manifest["parts"]} == {"customers", "offers", "orders"}
    for part in manifest["parts"]:
        assert hashlib.sha256(objects1[part["key"]]).hexdigest() == part["sha256"]

    # The second destination: the same rows MERGEd into the shared Snowflake table (fakesnow here).
    assert table_days(local_stack, run) == {day1: MEMBERS}

    load1 = local_stack.http.post("/_sim/optimove/batch/load", json={"day": day1}).json()
    assert load1["loaded"] is True
    assert (load1["refused"], load1["missingFiles"]) == ({}, [])
    assert load1["rows"]["customers"] >= MEMBERS
    assert load1["customersCreated"] >= MEMBERS  # a tenant creating customers only in batch gets them
    customers = set(local_stack.http.get("/_sim/optimove/customers").json())
    assert {f"FEED-{run}-00000", f"FEED-{run}-{MEMBERS - 1:05d}"} <= customers

    # Day 2: the same members, CHANGED of them changed, NEW new, and 3 rows the extract's validation refuses.
    data = extract_csv(run, range(MEMBERS + NEW), changed=CHANGED, bad=3)
    second = upload_extract(local_stack, gzip.compress(data, mtime=0))
    day2 = recorded_day(local_stack, second)
    assert day2 > day1  # day 1 was built: what arrives after it feeds the next day
    file_view = file_done(local_stack, second)
    assert (file_view["status"], file_view["counts"]["rejected"]) == ("COMPLETED_WITH_ERRORS", 3)
    build(local_stack, day2)
    objects2 = day_objects(s3, day2)
    sent2 = customer_rows(objects2, run)
    changed = {f"FEED-{run}-{i:05d}" for i in range(CHANGED)}
    new = {f"FEED-{run}-{i:05d}" for i in range(MEMBERS, MEMBERS + NEW)}
    assert set(sent2) == changed | new
    assert sent2[f"FEED-{run}-00007"]["LIFETIME_POINTS"] == "1008"
    # The table holds exactly the day's new and changed rows under that day; the rest keep day 1's.
    assert table_days(local_stack, run) == {day1: MEMBERS - CHANGED, day2: CHANGED + NEW}

    load2 = local_stack.http.post("/_sim/optimove/batch/load", json={"day": day2}).json()
    assert (load2["loaded"], load2["refused"]) == (True, {})
    assert new <= set(local_stack.http.get("/_sim/optimove/customers").json())
    assert load2["rowCountCheck"]["customers"]["ratio"] < 0.1  # far below day 1's: reported, as Optimove does

    # The day built again: the same keys, the same bytes.
    build(local_stack, day2)
    assert day_objects(s3, day2) == objects2
    status = json.loads(dig(local_stack, "feed", "status", "--days", "6", "--json").stdout)
    [report] = [d for d in status if d["day"] == day2]
    assert report["complete"] is True
    assert [r["status"] for r in report["runs"]] == ["COMPLETE", "COMPLETE"]
    assert report["runs"][-1]["sent"]["customers"] == report["runs"][0]["sent"]["customers"] >= CHANGED + NEW
    # And in Snowflake the rebuild changed nothing: the MERGE found every row as it was.
    assert report["runs"][0]["merged"]["customers"] >= CHANGED + NEW
    assert report["runs"][-1]["merged"]["customers"] == 0
    assert table_days(local_stack, run) == {day1: MEMBERS - CHANGED, day2: CHANGED + NEW}
