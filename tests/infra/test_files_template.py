"""The batch-file flow in the template: the bucket's settings, the state machine's definition (item
reader, batching, concurrency, tolerated failures, results, retries), the rule that starts it on an
upload, and what each function of the flow may do, on which prefix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from connectors.optimove.manifest import MANIFEST
from dig_contracts.events import EventType
from dig_contracts.files import CHUNKS_PER_BATCH
from tests.infra.conftest import synthesize
from tests.infra.test_template import Resources, actions, arn_of, one, ref, statements_of


def bucket_name(resources: Resources) -> str:
    [name] = [n for n in resources("AWS::S3::Bucket") if n.startswith("FilesBucket")]
    return name


def objects(bucket: str, prefix: str) -> dict[str, Any]:
    return {"Fn::Join": ["", [arn_of(bucket), f"/{prefix}*"]]}


def definition(resources: Resources) -> dict[str, Any]:
    """The state machine's definition, each CloudFormation reference written as ${LogicalId}."""
    _, machine = one(resources, "AWS::StepFunctions::StateMachine", "FilesStateMachine")
    parts = machine["DefinitionString"]["Fn::Join"][1]

    def text(part: Any) -> str:
        if isinstance(part, str):
            return part
        if "Ref" in part:
            return "${" + part["Ref"] + "}"
        return "${" + ".".join(part["Fn::GetAtt"]) + "}"

    return dict(json.loads("".join(text(p) for p in parts)))


def grants(statements: list[dict[str, Any]]) -> set[tuple[str, str]]:
    found = set()
    for statement in statements:
        listed = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        found |= {(a, json.dumps(r, sort_keys=True)) for a in listed for r in resources}
    return found


def test_the_files_bucket_is_private_encrypted_ssl_only_expiring_and_reports_uploads(resources: Resources) -> None:
    name = bucket_name(resources)
    bucket = resources("AWS::S3::Bucket")[name]
    properties = bucket["Properties"]
    assert properties["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert properties["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    ]
    [rule] = properties["LifecycleConfiguration"]["Rules"]
    assert (rule["ExpirationInDays"], rule["AbortIncompleteMultipartUpload"]) == (7, {"DaysAfterInitiation": 1})
    assert properties["NotificationConfiguration"] == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}
    assert bucket["DeletionPolicy"] == "Retain"
    assert not resources("Custom::S3BucketNotifications")  # no CDK helper function for it
    _, policy = one(resources, "AWS::S3::BucketPolicy", "FilesBucketPolicy")
    statements = policy["PolicyDocument"]["Statement"]
    [ssl] = [s for s in statements if s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}]
    assert (ssl["Effect"], ssl["Action"]) == ("Deny", "s3:*")
    [uploads] = [s for s in statements if s.get("Sid") == "UploadsOnlyThroughTheApisPresignedRequests"]
    api_role = next(n for n in resources("AWS::IAM::Role") if n.startswith("ApiHandlerRole"))
    assert (uploads["Effect"], uploads["Action"], uploads["Resource"]) == (
        "Deny",
        "s3:PutObject",
        objects(name, "uploads/"),
    )
    assert uploads["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": arn_of(api_role)}}


def test_an_upload_starts_the_state_machine_with_a_dead_letter_queue(resources: Resources) -> None:
    _, rule = one(resources, "AWS::Events::Rule", "FilesStartOnUpload")
    assert "EventBusName" not in rule  # S3 reports to the account's default bus
    assert rule["EventPattern"] == {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": [ref(bucket_name(resources))]}, "object": {"key": [{"prefix": "uploads/"}]}},
    }
    [target] = rule["Targets"]
    machine, _ = one(resources, "AWS::StepFunctions::StateMachine", "FilesStateMachine")
    dlq, _ = one(resources, "AWS::SQS::Queue", "FilesStartDeadLetterQueue")
    assert target["Arn"] == ref(machine)
    assert target["DeadLetterConfig"] == {"Arn": arn_of(dlq)}
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}


def test_the_state_machine_validates_then_maps_chunks_in_batches_then_finishes(resources: Resources) -> None:
    states = definition(resources)["States"]
    bucket = bucket_name(resources)
    assert definition(resources)["StartAt"] == "ValidateUpload"
    assert states["ValidateUpload"]["ResultPath"] == "$.validation"
    assert states["Proceed?"]["Choices"] == [
        {"Variable": "$.validation.proceed", "BooleanEquals": True, "Next": "ProcessChunks"},
        {
            "And": [
                {"Variable": "$.validation.wait", "IsPresent": True},
                {"Variable": "$.validation.wait", "BooleanEquals": True},
            ],
            "Next": "WaitForSlot",
        },
    ]
    # Files over the cap wait a minute and ask again; a validation that fails past its retries ends FAILED.
    assert states["WaitForSlot"] == {"Type": "Wait", "Seconds": 60, "Next": "ValidateUpload"}
    [validation_catch] = states["ValidateUpload"]["Catch"]
    assert validation_catch["Next"] == "FailFileAfterValidationFailure"
    assert states["FailFileAfterValidationFailure"]["Parameters"] == {
        "uploadKey.$": "$.detail.object.key",
        "mapError.$": "$.validationError.Error",
    }
    chunks = states["ProcessChunks"]
    assert chunks["ItemReader"] == {
        "Resource": "arn:${AWS::Partition}:states:::s3:getObject",
        "ReaderConfig": {"InputType": "JSON"},
        "Parameters": {"Bucket": "${" + bucket + "}", "Key.$": "$.validation.chunksKey"},
    }
    assert chunks["ItemBatcher"] == {
        "MaxItemsPerBatch": CHUNKS_PER_BATCH,
        "BatchInput": {
            "fileId.$": "$.validation.batchInput.fileId",
            "sourceKey.$": "$.validation.batchInput.sourceKey",
            "header.$": "$.validation.batchInput.header",
        },
    }
    assert (chunks["MaxConcurrency"], chunks["ToleratedFailurePercentage"]) == (4, 10)
    assert chunks["ResultWriter"]["Parameters"] == {"Bucket": "${" + bucket + "}", "Prefix": "work/map-results"}
    assert chunks["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    retries = chunks["ItemProcessor"]["States"]["ProcessBatch"]["Retry"]
    [own] = [r for r in retries if "ChunkNotDone" in r["ErrorEquals"]]
    assert (own["MaxAttempts"], own["BackoffRate"]) == (6, 2)
    assert chunks["Next"] == "FinishFile"
    [catch] = chunks["Catch"]
    assert (catch["ErrorEquals"], catch["Next"]) == (["States.ALL"], "FinishFileAfterMapFailure")
    assert states["FinishFileAfterMapFailure"]["Parameters"] == {
        "fileId.$": "$.validation.fileId",
        "mapError.$": "$.mapError.Error",
    }
    _, machine = one(resources, "AWS::StepFunctions::StateMachine", "FilesStateMachine")
    assert machine["LoggingConfiguration"]["Level"] == "ALL"
    assert machine["LoggingConfiguration"]["IncludeExecutionData"] is False  # no data in the logs
    assert machine["TracingConfiguration"] == {"Enabled": True}


def test_the_map_concurrency_comes_from_context(tmp_path: Path) -> None:
    outdir = synthesize(tmp_path, stage="wide", fileMapConcurrency="9", fileRetentionDays="3")
    template = json.loads((outdir / "Dig-wide.template.json").read_text())

    def of_type(kind: str) -> dict[str, dict[str, Any]]:
        return {n: r for n, r in template["Resources"].items() if r["Type"] == kind}

    assert definition(of_type)["States"]["ProcessChunks"]["MaxConcurrency"] == 9
    [bucket] = [r for n, r in of_type("AWS::S3::Bucket").items() if n.startswith("FilesBucket")]
    assert bucket["Properties"]["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == 3


def test_each_step_may_touch_its_own_prefixes_only(resources: Resources) -> None:
    bucket = bucket_name(resources)
    audit, _ = one(resources, "AWS::DynamoDB::Table", "DatabaseAuditTable")
    bus = next(iter(resources("AWS::Events::EventBus")))

    def s3_grants(role: str) -> set[tuple[str, str]]:
        return {g for g in grants(statements_of(resources, role)) if g[0].startswith("s3:")}

    def on(prefix: str) -> str:
        return json.dumps(objects(bucket, prefix), sort_keys=True)

    listing = ("s3:ListBucket", json.dumps(arn_of(bucket), sort_keys=True))
    assert s3_grants("ApiHandlerRole") == {
        ("s3:PutObject", on("uploads/")),
        ("s3:AbortMultipartUpload", on("uploads/")),
        ("s3:GetObject", on("reports/")),
        listing,
    }
    assert s3_grants("FilesValidateRole") == {
        ("s3:GetObject", on("uploads/")),
        ("s3:PutObject", on("work/")),
        ("s3:AbortMultipartUpload", on("work/")),
    }
    assert s3_grants("FilesBatchRole") == {
        ("s3:GetObject", on("uploads/")),
        ("s3:GetObject", on("work/")),
        ("s3:PutObject", on("work/")),
        ("s3:PutObject", on("extracts/")),
    }
    assert s3_grants("FilesFinishRole") == {
        ("s3:GetObject", on("work/")),
        ("s3:PutObject", on("reports/")),
        ("s3:AbortMultipartUpload", on("reports/")),
        listing,
    }
    batch = statements_of(resources, "FilesBatchRole")
    assert {a for a in actions(batch) if a.startswith(("dynamodb:", "events:"))} == {
        "dynamodb:BatchGetItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:GetItem",
        "events:PutEvents",
    }
    assert ("events:PutEvents", json.dumps(arn_of(bus), sort_keys=True)) in grants(batch)
    assert ("dynamodb:PutItem", json.dumps(arn_of(audit), sort_keys=True)) in grants(batch)
    assert "events:PutEvents" not in actions(statements_of(resources, "FilesValidateRole"))
    [listed] = [s for s in statements_of(resources, "FilesFinishRole") if s["Action"] == "s3:ListBucket"]
    assert listed["Condition"] == {"StringLike": {"s3:prefix": ["work/*"]}}


def test_operators_may_retry_a_file_and_read_its_results(resources: Resources) -> None:
    _, policy = one(resources, "AWS::IAM::ManagedPolicy", "OperatorPolicy")
    statements = policy["PolicyDocument"]["Statement"]
    machine, _ = one(resources, "AWS::StepFunctions::StateMachine", "FilesStateMachine")
    assert ("states:StartExecution", json.dumps(ref(machine), sort_keys=True)) in grants(statements)
    assert ("s3:GetObject", json.dumps(objects(bucket_name(resources), "work/"), sort_keys=True)) in grants(statements)
    assert "s3:PutObject" not in actions(statements)


def test_a_connector_naming_extracts_gets_their_file_ready_events_and_reads_their_rows_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    feeds = MANIFEST.model_copy(
        update={
            "name": "feeds",
            "event_types": (EventType.MEMBER_TIER,),
            "extracts": ("memberAccounts",),
            "sync_handler": None,
            "callbacks": False,
            "settings": (),
            "secrets": (),
        }
    )
    monkeypatch.setattr("infra.stack.installed_connectors", lambda: (feeds,))
    outdir = synthesize(tmp_path, stage="feeds")
    template = json.loads((outdir / "Dig-feeds.template.json").read_text())

    def of_type(kind: str) -> dict[str, dict[str, Any]]:
        return {n: r for n, r in template["Resources"].items() if r["Type"] == kind}

    _, rule = one(of_type, "AWS::Events::Rule", "FeedsFileReadyRule")
    queue, _ = one(of_type, "AWS::SQS::Queue", "FeedsQueue")
    assert rule["EventPattern"] == {
        "source": ["dig.files"],
        "detail-type": ["FILE_READY"],
        "detail": {"name": ["memberAccounts"]},
    }
    assert [t["Arn"] for t in rule["Targets"]] == [arn_of(queue)]
    s3 = {g for g in grants(statements_of(of_type, "FeedsHandlerRole")) if g[0].startswith("s3:")}
    bucket = bucket_name(of_type)
    assert s3 == {("s3:GetObject", json.dumps(objects(bucket, "extracts/memberAccounts/"), sort_keys=True))}


def test_outputs_name_the_files_bucket_and_state_machine(template: dict[str, Any]) -> None:
    assert {"FilesBucketName", "FilesStateMachineArn"} <= set(template["Outputs"])
