"""Card numbers in disguise, on every ingest route of `dig local`: each refused, and none of them in any
answer, audit record, file, report or provider request afterwards. (#21: the card-number rule.)"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import re
import uuid
from typing import Any

import httpx

from dig_contracts.examples import example_event
from dig_contracts.pan import luhn_valid, normalise
from tests.e2e.conftest import LocalStackProcess
from tests.e2e.test_files import aws, client, file_done

SEPARATORS = re.compile(r"[\s\-\u2010-\u2015._/\\,|]")


def card(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    return next(body + d for d in "0123456789" if luhn_valid(body + d))


def disguises(rng: random.Random) -> dict[str, tuple[str, str]]:
    """name -> (the card's digits, how it is written); fresh numbers, so that a match is never chance."""
    visa, mastercard, amex, discover = (
        card("4", 16, rng),
        card("52", 16, rng),
        card("37", 15, rng),
        card("6011", 16, rng),
    )
    return {
        "cvv glued": (visa, f"{visa}123"),
        "after a phone": (mastercard, f"tel 6135550100 {mastercard}"),
        "glued to letters": (visa, f"ref{visa}x"),
        "dots": (mastercard, ".".join(mastercard[i : i + 4] for i in range(0, 16, 4))),
        "slashes and underscores": (discover, f"{discover[:4]}/{discover[4:8]}_{discover[8:12]}/{discover[12:]}"),
        "tabs and no-break spaces": (amex, f"{amex[:4]}\t{amex[4:10]}\u00a0{amex[10:]}"),
        "full-width": (visa, "".join(chr(0xFF10 + int(d)) for d in visa)),
        "arabic-indic": (mastercard, "".join(chr(0x0660 + int(d)) for d in mastercard)),
    }


def with_note(event_id: str, note: Any) -> dict[str, Any]:
    event = example_event("MEMBER_PROFILE_UPDATE", eventId=event_id)
    event["data"]["profile"]["note"] = note
    return event


def scrubbed(text: str) -> str:
    return SEPARATORS.sub("", normalise(text))


def test_disguised_card_numbers_are_refused_on_every_route_and_kept_nowhere(local_stack: LocalStackProcess) -> None:
    rng = random.Random(uuid.uuid4().int)
    cases = disguises(rng)
    run = uuid.uuid4().hex[:8]
    answers: list[str] = []

    # POST /v1/events and /v1/sync/events: each one refused, naming the field.
    for index, (_, written) in enumerate(cases.values()):
        for route in ("/v1/events", "/v1/sync/events"):
            answer = local_stack.http.post(route, json=with_note(f"pan-{run}-{route[4]}-{index}", written))
            answers.append(answer.text)
            assert answer.status_code == 422, (route, written, answer.text)
            assert answer.json()["error"]["code"] == "CARD_NUMBER_REFUSED"
            assert answer.json()["error"]["details"][0]["field"] == "data.profile.note"
    # A card number as a JSON number.
    number = card("4", 16, rng)
    raw = json.dumps(with_note(f"pan-{run}-number", 0)).replace('"note": 0', f'"note": {number}.0')
    answer = local_stack.http.post("/v1/events", content=raw, headers={"Content-Type": "application/json"})
    answers.append(answer.text)
    assert answer.json()["error"]["code"] == "CARD_NUMBER_REFUSED"

    # POST /v1/events/batch: the disguised entries refused, their neighbour accepted.
    batch = [with_note(f"pan-{run}-b-{i}", written) for i, (_, written) in enumerate(cases.values())]
    batch.append(with_note(f"pan-{run}-b-good", "no card here"))
    answer = local_stack.http.post("/v1/events/batch", json={"events": batch})
    answers.append(answer.text)
    statuses = [(r["status"], (r.get("error") or {}).get("code")) for r in answer.json()["results"]]
    assert statuses == [("rejected", "CARD_NUMBER_REFUSED")] * len(cases) + [("accepted", None)]

    # A file of events and an extract, uploaded with a form content type (S3 stores the bytes all the same).
    lines = [
        json.dumps(with_note(f"pan-{run}-f-{i}", w), ensure_ascii=False) for i, (_, w) in enumerate(cases.values())
    ]
    events_file = "\n".join(lines).encode()
    rows = [
        f"X-{run}-{i},{w.replace(',', ' ')},GOLD,1,true,2026-11-30T10:00:00Z" for i, (_, w) in enumerate(cases.values())
    ]
    extract = ("memberId,email,tier,pointsBalance,emailOptIn,LastUpdated\n" + "\n".join(rows) + "\n").encode()
    for declaration, data in (
        ({"kind": "events"}, events_file),
        ({"kind": "extract", "name": "memberAccounts", "format": "csv"}, extract),
    ):
        declared = local_stack.http.post(
            "/v1/files",
            json={
                **declaration,
                "compression": "none",
                "sha256": hashlib.sha256(data).hexdigest(),
                "contentLength": len(data),
            },
        ).json()
        upload = declared["upload"]
        headers = {**upload["headers"], "Content-Type": "application/x-www-form-urlencoded"}
        assert httpx.put(upload["url"], content=data, headers=headers).status_code == 200
        view = file_done(local_stack, declared["fileId"])
        assert (view["counts"]["accepted"], view["counts"]["rejected"]) == (0, len(cases)), view
        report = httpx.get(view["report"]["url"]).text if view.get("report") else ""
        answers.append(json.dumps(view) + report)
        assert report.count("must not contain a payment card number") >= len(cases)

    # Nowhere afterwards: the answers, every item of the tables, every object of the files bucket, and
    # what the simulated providers received.
    session = aws(local_stack)
    description = session.description  # type: ignore[attr-defined]
    dynamodb, s3 = client(session, "dynamodb"), client(session, "s3")
    stored: list[str] = list(answers)
    for table in (description["auditTable"], description["configTable"]):
        for page in dynamodb.get_paginator("scan").paginate(TableName=table):
            stored.extend(json.dumps(item, default=str, ensure_ascii=False) for item in page["Items"])
    bucket = description["filesBucket"]
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for listed in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=listed["Key"])["Body"].read()
            if body[:2] == b"\x1f\x8b":
                body = gzip.decompress(body)
            if not listed["Key"].startswith("uploads/"):  # the uploads are the client's own bytes, kept 7 days
                stored.append(body.decode("utf-8", "replace"))
    stored.append(json.dumps(local_stack.simulator_requests(), ensure_ascii=False))
    everything = scrubbed("\n".join(stored))
    assert scrubbed(f"pan-{run}-b-good") in everything  # the scan does see what was stored
    for name, (digits, _) in [*cases.items(), ("json number", (number, ""))]:
        assert digits[-12:] not in everything, f"{name}: found stored"
