"""`dig cost` end to end: its own local stack, the real handlers, every AWS request metered; and what
each handler asked of AWS checked against its IAM policy in the synthesized template."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest

from tests.infra.conftest import synthesize

# botocore's operation names that IAM spells otherwise (service authorization reference).
IAM_ACTIONS = {
    "s3:HeadObject": "s3:GetObject",
    "s3:ListObjectsV2": "s3:ListBucket",
    "s3:CreateMultipartUpload": "s3:PutObject",
    "s3:UploadPart": "s3:PutObject",
    "s3:CompleteMultipartUpload": "s3:PutObject",
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
    "lambda:Invoke": "lambda:InvokeFunction",
    "stepfunctions:StartExecution": "states:StartExecution",
}


# What these tests check (records, entries and requests per event, the IAM of every call) does not depend
# on how long a lane gathers; the manifests' windows (Optimove's 20 s) would make each run wait on them.
WINDOW_SECONDS = "1"


def start_dig_cost(*arguments: str) -> subprocess.Popen[str]:
    dig = str(Path(sys.executable).parent / "dig")
    return subprocess.Popen(
        [dig, "cost", *arguments, "--batching-window", WINDOW_SECONDS, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(run: subprocess.Popen[str]) -> dict[str, Any]:
    stdout, stderr = run.communicate(timeout=600)
    assert run.returncode == 0, stderr[-3000:]
    return dict(json.loads(stdout))


@pytest.fixture(scope="module")
def template_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize(tmp_path_factory.mktemp("cdk.out")) / "Dig-dev.template.json"


@pytest.fixture(scope="module")
def reports(template_path: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The three runs side by side: each is its own local stack, mostly waiting on the others' work."""
    batch = start_dig_cost("--events", "300")
    file = start_dig_cost("--route", "file", "--events", "1000")
    template = template_path
    # A month of 10,000,000: 3.8 events a second for 10 s, the default mix, one request each.
    paced = start_dig_cost(
        "--route", "single", "--mix", "--monthly", "10M", "--seconds", "10", "--template", str(template)
    )
    return finished(batch), finished(file), finished(paced)


@pytest.fixture(scope="module")
def report(reports: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    return reports[0]


@pytest.fixture(scope="module")
def file_report(reports: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    return reports[1]


@pytest.fixture(scope="module")
def paced_report(reports: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    return reports[2]


def test_dig_cost_prices_the_batch_route_from_what_the_handlers_actually_asked_of_aws(report: dict[str, Any]) -> None:
    assert (report["route"], report["accepted"]) == ("batch", 300)
    assert report["batching_window_seconds"] == float(WINDOW_SECONDS)  # said in the report, not hidden
    lines = {(line["component"], line["detail"]): line for line in report["lines"]}
    # One record per event: the item and its byMember entry, under 1 KB each (a profile update is not
    # among the types byEventType holds).
    assert lines[("DynamoDB writes", "audit: message records")]["per_event"] == 2
    # One delivery per event (MEMBER_PROFILE_UPDATE reaches Optimove only): the item and its status entry.
    # A delivered delivery is the item alone: the status index holds only what is pending or failed.
    assert lines[("DynamoDB writes", "audit: delivery records")]["per_event"] == 1
    # One entry per event, and Optimove's result callbacks (one per coalesced call) go on the bus too.
    assert 1 <= lines[("EventBridge", "PutEvents entries (64 KB chunks)")]["per_event"] < 1.05
    assert 1 <= lines[("SQS", "rules' deliveries to connector queues")]["per_event"] < 1.05
    # One POST per 500 events, plus Optimove's result callbacks: far below one API request per event.
    assert lines[("API Gateway", "REST requests (posts, file status, provider callbacks)")]["per_event"] < 0.05
    # 10 entries a PutEvents call (30 for the 300 events), and one call for each of Optimove's result
    # callbacks (each an invocation of the API beside the one post; how many depends on the window).
    callbacks = round(lines[("Lambda", "dig_api.handler: invocations")]["per_event"] * 300) - 1
    assert round(report["requests_per_event"]["events.PutEvents"] * 300) == 30 + callbacks
    # Profile updates only: every call to Optimove is an UpdateCustomerAttributes, whose results come back.
    assert round(report["provider_calls"]["optimove"]["per_event"] * 300) == callbacks > 0
    total = sum(line["usd_per_million"] for line in report["lines"])
    assert abs(report["totalUsdPerMillion"] - total) < 0.01
    assert 0 < report["auditTrailShare"] < 1
    # Each function's time taken apart: the parts never add up to more than the wall time measured; the
    # meter's own reads (it sizes every write) are the meter's; the API calls no provider; the rest priced.
    timed = report["lambda_seconds"]
    assert {"dig_api.handler.lambda_handler", "connectors.optimove.handler.lambda_handler"} <= set(timed)
    for parts in timed.values():
        apart = parts["own"] + parts["meter"] + parts["aws_local"] + parts["provider"]
        assert apart >= parts["measured"] * 0.999 - 0.01
        assert max(parts["meter"], parts["aws_local"], parts["provider"], parts["own"]) <= parts["measured"] + 0.01
        assert 0 <= parts["own_idle"] <= parts["own"]  # the part of its own time its thread spent off the CPU
    api = timed["dig_api.handler.lambda_handler"]
    assert (api["provider"], api["meter"] > 0, api["aws_in_region"] > 0) == (0, True, True)
    assert timed["connectors.optimove.handler.lambda_handler"]["provider"] > 0


def test_dig_cost_prices_a_file_of_events_with_each_step_of_the_file_flow(file_report: dict[str, Any]) -> None:
    assert (file_report["route"], file_report["accepted"]) == ("file", 1000)
    lines = {(line["component"], line["detail"]): line for line in file_report["lines"]}
    assert lines[("DynamoDB writes", "audit: message records")]["per_event"] == 2
    assert 1 <= lines[("EventBridge", "PutEvents entries (64 KB chunks)")]["per_event"] < 1.05
    # 1,000 lines are 2 chunks of 500, one map batch: a validation, a batch and a finish.
    for step in ("validate_handler", "batch_handler", "finish_handler"):
        assert lines[("Lambda", f"dig_api.files.handler.{step}: invocations")]["per_event"] == 0.001
    assert (
        lines[("Step Functions", "state transitions (modelled: 4 a file, 2 a child execution)")]["per_event"] == 0.006
    )
    assert lines[("S3", "PUT and LIST requests")]["per_event"] > 0


def test_a_paced_month_of_the_default_mix_is_priced_whole_at_its_rate(paced_report: dict[str, Any]) -> None:
    assert paced_report["monthly_events"] == 10_000_000
    assert paced_report["per_second"] == pytest.approx(10_000_000 / (30.42 * 86_400), rel=0.001)
    assert paced_report["event_type"] == "default mix"
    assert paced_report["accepted"] == math.ceil(paced_report["per_second"] * 10) == 39  # 10 s of them
    components = {line["component"] for line in paced_report["lines"]}
    assert {"DynamoDB storage", "DynamoDB PITR", "EventBridge archive", "X-Ray", "CloudWatch Logs"} <= components
    [xray] = [line for line in paced_report["lines"] if line["component"] == "X-Ray"]
    assert "at the measured rate" in xray["detail"]
    # The API's requests at 5% (the stack's sampling rule); the connectors' queue-fed functions pass the
    # upstream's decision through (queueTracing's default), priced at most as often as the API's.
    invocations = {
        line["detail"]: line["per_event"]
        for line in paced_report["lines"]
        if line["component"] == "Lambda" and line["detail"].endswith(": invocations")
    }
    connectors = sum(v for k, v in invocations.items() if k.startswith("connectors."))
    expected = 0.05 * (connectors + invocations["dig_api.handler: invocations"])
    assert connectors > 0
    assert 0.9 * expected <= xray["per_event"] <= expected * 1.001
    fixed = {line["detail"]: line for line in paced_report["monthly"]}
    assert set(fixed["secrets the connectors and webhooks read, made outside the stack"]) == {
        "component",
        "detail",
        "count",
        "usd_per_month",
    }
    assert paced_report["monthTotalUsd"] == pytest.approx(
        paced_report["totalUsdPerMillion"] * 10 + paced_report["fixedUsdPerMonth"], abs=0.02
    )
    assert paced_report["free_tiers"]
    # Marketo's calls at the month's volume, against DIG's share of the instance's daily quota.
    marketo = paced_report["provider_calls"]["marketo"]
    assert marketo["per_event"] > 0
    assert marketo["per_day"] == pytest.approx(marketo["per_event"] * 10_000_000 / 30.42, abs=20)  # per_event rounded
    assert (marketo["limit_per_day"], marketo["limit_per_minute"]) == (25_000, 150)
    assert marketo["overDailyQuota"] is (marketo["per_day"] > 25_000)


def granted_actions(template: dict[str, Any], handler: str) -> set[str]:
    """The actions the IAM policies of the function with ``handler`` allow."""
    resources = template["Resources"]
    [role] = {
        r["Properties"]["Role"]["Fn::GetAtt"][0]
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"].get("Handler") == handler
    }
    granted: set[str] = set()
    for policy in resources.values():
        if policy["Type"] == "AWS::IAM::Policy" and {"Ref": role} in policy["Properties"]["Roles"]:
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                if statement["Effect"] == "Allow":
                    action = statement["Action"]
                    granted.update([action] if isinstance(action, str) else action)
    return granted


def test_every_request_a_handler_made_is_one_its_deployed_role_allows(
    report: dict[str, Any], file_report: dict[str, Any], paced_report: dict[str, Any], template_path: Path
) -> None:
    # moto enforces no IAM: without this check, a handler calling what its role lacks passes every
    # local test and fails every request in AWS (AccessDenied).
    template = json.loads(template_path.read_text())
    called: dict[str, set[str]] = {}
    for run in (report, file_report, paced_report):
        for handler, calls in run["calls_by_function"].items():
            called.setdefault(handler, set()).update(calls)
    assert {
        "dig_api.handler.lambda_handler",
        "dig_api.files.handler.batch_handler",
        "connectors.optimove.handler.lambda_handler",
    } <= set(called)
    missing = {
        handler: sorted(
            action
            for action in (IAM_ACTIONS.get(call, call) for call in calls)
            if not any(fnmatchcase(action, allowed) for allowed in granted_actions(template, handler))
        )
        for handler, calls in called.items()
    }
    assert {handler: actions for handler, actions in missing.items() if actions} == {}
