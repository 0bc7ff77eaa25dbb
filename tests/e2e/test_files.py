"""The batch-file flow on `dig local`, as ES Loyalty uses it: a 5,000-line events file with bad
lines uploaded with `dig files upload`, its counts, its report and its good events at Optimove; the
same events again; an extract announced on the bus to a connector whose manifest maps it."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import boto3
import httpx

from dig_contracts.examples import example_event
from dig_contracts.files import MAX_LINE_BYTES
from dig_contracts.manifest import ConnectorManifest
from tests.e2e.conftest import LocalStackProcess

CARD = "4111 1111 1111 1111"
LINES = 3_000  # 10,000 until stop 15, 5,000 until stop 19: make test's 15 minutes (three batches still)
BAD = LINES * 3 // 100


def events_file(run: str, count: int) -> tuple[list[bytes], dict[int, str], list[str]]:
    """``count`` lines, 3% of them bad in four ways; the bad lines' codes, the good members."""
    lines: list[bytes] = []
    bad: dict[int, str] = {}
    members: list[str] = []
    for number in range(1, count + 1):
        member = f"F-{run}-{number}"
        event = example_event("MEMBER_PROFILE_UPDATE", eventId=f"file-{run}-{number}", memberId=member)
        kind = number % 100
        if kind == 10:
            lines.append(b'{"eventId": "broken"')
            bad[number] = "INVALID_JSON"
        elif kind == 40:
            event["memberId"] = ""
            lines.append(json.dumps(event).encode())
            bad[number] = "VALIDATION_FAILED"
        elif kind == 70 and number != 70:
            event["data"]["profile"]["note"] = f"card {CARD}"
            lines.append(json.dumps(event).encode())
            bad[number] = "CARD_NUMBER_REFUSED"
        elif number == 70:
            lines.append(b'{"pad": "' + b"x" * MAX_LINE_BYTES + b'"}')
            bad[number] = "LINE_TOO_LONG"
        else:
            lines.append(json.dumps(event).encode())
            members.append(member)
    return lines, bad, members


def aws(stack: LocalStackProcess) -> boto3.session.Session:
    description = stack.http.get("/_local/stack").json()
    session = boto3.session.Session(aws_access_key_id="local", aws_secret_access_key="local", region_name="us-east-1")
    session.endpoint = description["awsEndpoint"]  # type: ignore[attr-defined]
    session.description = description  # type: ignore[attr-defined]
    return session


def client(session: Any, service: str) -> Any:
    return session.client(service, endpoint_url=session.endpoint)


def dig(stack: LocalStackProcess, *arguments: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "dig"), *arguments, "--local", "--local-url", stack.url]
    environment = {**os.environ, "COLUMNS": "200"}  # one summary line per line of output
    return subprocess.run(command, capture_output=True, text=True, timeout=600, check=False, env=environment)


def file_done(stack: LocalStackProcess, file_id: str) -> dict[str, Any]:
    """The file's view once it is done. FILE_READY goes on the bus before an extract is marked done
    (never done without its announcement), so its consumers may see it PROCESSING for a moment."""

    def done() -> dict[str, Any] | None:
        view: dict[str, Any] = stack.http.get(f"/v1/files/{file_id}").json()
        return view if view["status"] not in ("AWAITING_UPLOAD", "VALIDATING", "PROCESSING") else None

    return dict(stack.wait_until(done, f"file {file_id} done", 60))


def optimove_customers(stack: LocalStackProcess) -> set[str]:
    return {
        customer["CustomerID"]
        for request in stack.simulator_requests()
        if request["call"] == "UpdateCustomerAttributes" and request["status"] == 200
        for customer in request["body"]["CustomerNewAttributesValuesList"]
    }


def test_a_large_events_file_reports_every_bad_line_and_delivers_every_good_one(
    local_stack: LocalStackProcess, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    lines, bad, members = events_file(run, LINES)
    assert len(bad) == BAD  # 3%
    assert local_stack.http.post("/_sim/optimove/customers", json={"customers": members}).status_code == 204
    path = tmp_path / "events.jsonl.gz"
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))

    uploaded = dig(local_stack, "files", "upload", str(path))

    assert uploaded.returncode == 1, uploaded.stderr  # 1: not COMPLETED (some lines were rejected)
    assert "COMPLETED_WITH_ERRORS" in uploaded.stdout
    assert f"lines {LINES}  accepted {LINES - BAD}  duplicates 0  rejected {BAD}" in uploaded.stdout
    [file_id] = [
        f["fileId"]
        for f in local_stack.http.get("/v1/files").json()["files"]
        if f["kind"] == "events" and f["counts"]["lines"] == LINES
    ]
    view = local_stack.http.get(f"/v1/files/{file_id}").json()
    assert view["status"] == "COMPLETED_WITH_ERRORS"
    assert view["counts"] == {
        "lines": LINES,
        "accepted": LINES - BAD,
        "duplicates": 0,
        "rejected": BAD,
        "unprocessed": 0,
    }
    report = list(csv.reader(io.StringIO(httpx.get(view["report"]["url"]).text)))
    assert report[0] == ["line", "id", "code", "field", "rule"]
    assert {int(row[0]): row[2] for row in report[1:]} == bad
    assert "4111" not in "\n".join(",".join(row) for row in report)

    # Every good event reaches Optimove, and its audit record names the file and the line.
    wanted = set(members)
    local_stack.wait_until(lambda: wanted <= optimove_customers(local_stack), "every good member at Optimove", 600)
    record = local_stack.http.get(f"/v1/events/file-{run}-2").json()
    assert (record["fileId"], record["fileLine"], record["client"]) == (file_id, 2, "es-loyalty")
    delivered = local_stack.wait_for_final(record["messageId"])
    assert [d["status"] for d in delivered["deliveries"] if d["connector"] == "optimove"] == ["DELIVERED"]

    # The same file again is the same file: nothing to upload, nothing published.
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    again = local_stack.http.post(
        "/v1/files",
        json={
            "kind": "events",
            "format": "jsonl",
            "compression": "gzip",
            "sha256": digest,
            "contentLength": path.stat().st_size,
        },
    )
    assert again.status_code == 200
    assert again.json() == {"fileId": file_id, "status": "COMPLETED_WITH_ERRORS", "duplicate": True, "upload": None}

    # The same events in another file (re-sent after an incident): duplicates, none published again.
    resent = tmp_path / "resent.jsonl"
    resent.write_bytes(b"\n".join(lines[:200]) + b"\n")
    second = dig(local_stack, "files", "upload", str(resent))
    assert "lines 200  accepted 0  duplicates 194  rejected 6" in second.stdout, second.stdout + second.stderr

    listed = dig(local_stack, "audit", "list", "--file", file_id, "--limit", "3", "--json")
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [row["memberId"] for row in rows] == [f"F-{run}-1", f"F-{run}-2", f"F-{run}-3"]


def test_an_extract_is_announced_on_the_bus_to_the_connector_that_maps_it(
    local_stack: LocalStackProcess,
) -> None:
    session = aws(local_stack)
    sqs, events, s3 = client(session, "sqs"), client(session, "events"), client(session, "s3")
    subscriber = ConnectorManifest(
        name="feeds",
        description="a test connector that maps the member accounts extract",
        event_types=("MEMBER_TIER",),
        handler="tests.handler",
        packages=("tests",),
        extracts=("memberAccounts",),
    )
    run = uuid.uuid4().hex[:8]
    queue_url = sqs.create_queue(QueueName=f"feeds-{run}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = session.description["eventBus"]  # type: ignore[attr-defined]
    events.put_rule(Name=f"feeds-{run}", EventBusName=bus, EventPattern=json.dumps(subscriber.file_pattern()))
    events.put_targets(Rule=f"feeds-{run}", EventBusName=bus, Targets=[{"Id": "q", "Arn": queue_arn}])

    data = (
        "memberId,email,tier,pointsBalance,emailOptIn,LastUpdated\n"
        f"X-{run}-1,ada@example.com,GOLD,120,true,2026-11-30T10:00:00Z\n"
        f"X-{run}-2,bob@example.com,SILVER,many,false,2026-11-30T10:00:00Z\n"
        f"X-{run}-3,,BRONZE,0,0,2026-11-30T11:00:00+01:00\n"
    ).encode()
    declared = local_stack.http.post(
        "/v1/files",
        json={
            "kind": "extract",
            "name": "memberAccounts",
            "format": "csv",
            "compression": "none",
            "sha256": hashlib.sha256(data).hexdigest(),
            "contentLength": len(data),
        },
    ).json()
    upload = declared["upload"]
    assert httpx.put(upload["url"], content=data, headers=upload["headers"]).status_code == 200

    def announced() -> dict[str, Any] | None:
        answer = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1)
        return json.loads(answer["Messages"][0]["Body"]) if answer.get("Messages") else None

    event = local_stack.wait_until(announced, "FILE_READY on the subscriber's queue", 60)
    assert (event["source"], event["detail-type"]) == ("dig.files", "FILE_READY")
    detail = event["detail"]
    assert (detail["fileId"], detail["name"], detail["rows"], detail["rejected"]) == (
        declared["fileId"],
        "memberAccounts",
        2,
        1,
    )
    [part] = detail["parts"]
    rows = [
        json.loads(line)
        for line in gzip.decompress(s3.get_object(Bucket=detail["bucket"], Key=part)["Body"].read()).splitlines()
    ]
    assert [(r["memberId"], r["pointsBalance"], r["emailOptIn"], r["email"]) for r in rows] == [
        (f"X-{run}-1", 120, True, "ada@example.com"),
        (f"X-{run}-3", 0, False, None),
    ]
    view = file_done(local_stack, declared["fileId"])
    assert view["status"] == "COMPLETED_WITH_ERRORS"
    assert view["counts"]["rejected"] == 1
