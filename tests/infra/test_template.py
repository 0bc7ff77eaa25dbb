"""The CloudFormation template that `cdk deploy` would ship: properties, not resource counts."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from infra.bundling import bytecode_python

from connectors.optimove.manifest import MANIFEST
from db.schema import AUDIT_TABLE
from dig_contracts.events import EventType
from dig_contracts.registry import installed_connectors
from tests.infra.conftest import synthesize

Resources = Callable[[str], dict[str, dict[str, Any]]]


CONNECTORS = installed_connectors()


def one(resources: Resources, kind: str, prefix: str) -> tuple[str, dict[str, Any]]:
    [(name, resource)] = [(n, r) for n, r in resources(kind).items() if n.startswith(prefix)]
    return name, resource["Properties"]


def ref(name: str) -> dict[str, Any]:
    return {"Ref": name}


def arn_of(name: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [name, "Arn"]}


def joined(value: Any) -> str:
    """A value CloudFormation joins (a JSON text around a token): its text, each token as ``<token>``."""
    if isinstance(value, str):
        return value
    [separator, parts] = value["Fn::Join"]
    return separator.join(part if isinstance(part, str) else f"<{_token(part)}>" for part in parts)


def _token(part: dict[str, Any]) -> str:
    if "Ref" in part:
        return f"Ref:{part['Ref']}"
    name, attribute = part["Fn::GetAtt"]
    return f"GetAtt:{name}.{attribute}"


def statements_of(resources: Resources, role_prefix: str) -> list[dict[str, Any]]:
    role = next(n for n in resources("AWS::IAM::Role") if n.startswith(role_prefix))
    found = []
    for policy in resources("AWS::IAM::Policy").values():
        if ref(role) in policy["Properties"]["Roles"]:
            found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return found


def actions(statements: list[dict[str, Any]]) -> set[str]:
    out: set[str] = set()
    for statement in statements:
        listed = statement["Action"]
        out |= {listed} if isinstance(listed, str) else set(listed)
    return out


# --- routing: rule -> queue -> function --------------------------------------------------------


def test_the_optimove_rules_route_its_event_types_from_the_dig_api_to_its_two_lanes(resources: Resources) -> None:
    _, rule = one(resources, "AWS::Events::Rule", "OptimoveRule")
    _, immediate_rule = one(resources, "AWS::Events::Rule", "OptimoveImmediateRule")
    optimove = [
        "MEMBER_REGISTRATION",
        "OPT_IN_EMAIL",
        "REDEMPTION",
        "MEMBER_PROFILE_UPDATE",
        "MEMBER_TIER",
        "PARTNER_CARD_LINK",
        "MEMBER_HOUSEHOLD_CHANGED",
        "OFFERS_ASSIGNED",
        "VOUCHER_ISSUED",
        "POINTS_TRANSFERRED",
        "PURCHASE",
        "GAME_PLAY_AWARDED",
    ]
    # Every event type in exactly one lane: a message is one delivery of the connector, whichever lane.
    lanes = rule["EventPattern"]["detail-type"] + immediate_rule["EventPattern"]["detail-type"]
    assert sorted(lanes) == sorted(optimove)
    assert immediate_rule["EventPattern"]["source"] == ["dig.api"]
    optimove = ["OPT_IN_EMAIL", "MEMBER_PROFILE_UPDATE"]
    assert rule["EventPattern"] == {"source": ["dig.api"], "detail-type": optimove}
    assert rule["EventBusName"] == ref(next(iter(resources("AWS::Events::EventBus"))))
    [target] = rule["Targets"]
    queue, _ = one(resources, "AWS::SQS::Queue", "OptimoveQueue")
    target_dlq, _ = one(resources, "AWS::SQS::Queue", "OptimoveRuleTargetDeadLetterQueue")
    assert target["Arn"] == arn_of(queue)
    assert target["DeadLetterConfig"] == {"Arn": arn_of(target_dlq)}
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}


def test_an_installed_connector_is_wired_without_a_change_to_the_core(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A second connector, as a third party's distribution would declare it (dig_contracts.registry).
    braze = MANIFEST.model_copy(
        update={
            "name": "braze",
            "event_types": (EventType.MEMBER_TIER,),
            "immediate_event_types": (),
            "sync_handler": None,
            "callbacks": False,
            "settings": (),
            "secrets": (),
        }
    )
    monkeypatch.setattr("infra.stack.installed_connectors", lambda: (braze, MANIFEST))
    outdir = synthesize(tmp_path / "two", stage="two")
    template = json.loads((outdir / "Dig-two.template.json").read_text())

    def of_type(kind: str) -> dict[str, dict[str, Any]]:
        return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}

    _, rule = one(of_type, "AWS::Events::Rule", "BrazeRule")
    queue, _ = one(of_type, "AWS::SQS::Queue", "BrazeQueue")
    assert rule["EventPattern"] == {"source": ["dig.api"], "detail-type": ["MEMBER_TIER"]}
    assert [t["Arn"] for t in rule["Targets"]] == [arn_of(queue)]
    _, mapping = one(of_type, "AWS::Lambda::EventSourceMapping", "BrazeHandler")
    assert mapping["EventSourceArn"] == arn_of(queue)
    assert "BrazeDeadLetterQueueUrl" in template["Outputs"]
    assert "OptimoveQueueUrl" in template["Outputs"]  # the first connector's logical ids are unchanged
    report = json.loads((outdir / "validation-report.json").read_text())
    assert report["pluginReports"][0]["violations"] == []


def test_each_lane_has_its_queue_rule_and_event_source_mapping_into_the_one_connector_function(
    resources: Resources,
) -> None:
    function, _ = one(resources, "AWS::Lambda::Function", "OptimoveHandler")
    coalescing, _ = one(resources, "AWS::SQS::Queue", "OptimoveQueue")
    immediate, immediate_queue = one(resources, "AWS::SQS::Queue", "OptimoveImmediateQueue")
    mappings = {
        m["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]: m["Properties"]
        for n, m in resources("AWS::Lambda::EventSourceMapping").items()
        if n.startswith("OptimoveHandler")
    }
    assert set(mappings) == {coalescing, immediate}
    assert {m["FunctionName"]["Ref"] for m in mappings.values()} == {function}
    # Attribute writes coalesce: a thousand a batch, gathered for up to 20 s.
    assert mappings[coalescing]["BatchSize"] == MANIFEST.batch_size == 1000
    assert mappings[coalescing]["MaximumBatchingWindowInSeconds"] == 20
    # What a member waits for: no batching window, ten at most (Lambda's limit without a window).
    assert mappings[immediate]["BatchSize"] == 10
    assert mappings[immediate].get("MaximumBatchingWindowInSeconds", 0) == 0
    for mapping in mappings.values():
        assert mapping["ScalingConfig"] == {"MaximumConcurrency": 2}
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # Both lanes' failures end in the connector's one dead-letter queue.
    dlq, _ = one(resources, "AWS::SQS::Queue", "OptimoveDeadLetterQueue")
    assert immediate_queue["RedrivePolicy"] == {"deadLetterTargetArn": arn_of(dlq), "maxReceiveCount": 5}
    _, rule = one(resources, "AWS::Events::Rule", "OptimoveRule")
    _, immediate_rule = one(resources, "AWS::Events::Rule", "OptimoveImmediateRule")
    assert rule["EventPattern"]["detail-type"] == ["OPT_IN_EMAIL", "MEMBER_PROFILE_UPDATE"]
    assert sorted(immediate_rule["EventPattern"]["detail-type"]) == sorted(
        t.value for t in MANIFEST.immediate_event_types
    )
    assert EventType.MEMBER_REGISTRATION in MANIFEST.immediate_event_types
    assert [t["Arn"] for t in immediate_rule["Targets"]] == [arn_of(immediate)]
    target_dlq, _ = one(resources, "AWS::SQS::Queue", "OptimoveRuleTargetDeadLetterQueue")
    assert immediate_rule["Targets"][0]["DeadLetterConfig"] == {"Arn": arn_of(target_dlq)}


def test_every_queue_is_encrypted_and_refuses_plain_http_and_work_queues_have_a_dead_letter_queue(
    resources: Resources,
) -> None:
    queues = resources("AWS::SQS::Queue")
    # Per connector: its queue, dead-letter and rule-target DLQs, an immediate lane's queue when it has
    # one; and the file flow's start DLQ.
    immediate = sum(1 for c in CONNECTORS if c.immediate_event_types)
    assert len(queues) == 3 * len(CONNECTORS) + immediate + 1
    assert all(q["Properties"]["SqsManagedSseEnabled"] is True for q in queues.values())
    _, work = one(resources, "AWS::SQS::Queue", "OptimoveQueue")
    dlq, _ = one(resources, "AWS::SQS::Queue", "OptimoveDeadLetterQueue")
    assert work["RedrivePolicy"] == {"deadLetterTargetArn": arn_of(dlq), "maxReceiveCount": 5}
    assert work["VisibilityTimeout"] == 6 * MANIFEST.timeout_seconds + 20
    for policy in resources("AWS::SQS::QueuePolicy").values():
        denies = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
        assert denies
        assert denies[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


# --- the database ----------------------------------------------------------------------------


def test_tables_are_on_demand_encrypted_recoverable_with_ttl(resources: Resources) -> None:
    tables = resources("AWS::DynamoDB::Table")
    assert len(tables) == 2
    for table in tables.values():
        properties = table["Properties"]
        assert properties["BillingMode"] == "PAY_PER_REQUEST"
        assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert properties["SSESpecification"] == {"SSEEnabled": True}
        assert properties["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
        assert table["DeletionPolicy"] == "Retain"
    _, audit = one(resources, "AWS::DynamoDB::Table", "DatabaseAuditTable")
    assert {i["IndexName"] for i in audit["GlobalSecondaryIndexes"]} == {i.name for i in AUDIT_TABLE.indexes}


# --- functions -------------------------------------------------------------------------------


def test_functions_run_arm64_on_the_newest_python_with_tracing(resources: Resources) -> None:
    functions = resources("AWS::Lambda::Function")
    # The API and its authorizer; the file flow's three steps; each connector's two, and its jobs.
    assert len(functions) == 2 + 3 + sum(1 + bool(c.sync_handler) + len(c.scheduled) for c in CONNECTORS)
    [shared] = resources("AWS::Lambda::LayerVersion").keys() - {
        n for n in resources("AWS::Lambda::LayerVersion") if "Job" in n
    }
    for name, function in functions.items():
        properties = function["Properties"]
        assert properties["Runtime"] == "python3.14"
        assert properties["Architectures"] == ["arm64"]
        # Queue-fed connector functions pass through the upstream's decision (queueTracing): Lambda's own
        # sampling would trace nearly every invocation at a low rate.
        queue_fed = any(name.startswith(f"{c.name.title()}Handler") for c in CONNECTORS)
        assert properties["TracingConfig"] == {"Mode": "PassThrough" if queue_fed else "Active"}, name
        # The shared dependencies; a job with requirements of its own (Optimove's feed: pyarrow) one more.
        expected = [ref(shared), ref("OptimoveFeedJobLayer")] if name.startswith("OptimoveFeedJob") else [ref(shared)]
        assert [
            {"Ref": layer["Ref"].rstrip("0123456789ABCDEF")} if "Job" in layer["Ref"] else layer
            for layer in properties["Layers"]
        ] == expected


def test_the_api_function_knows_its_table_and_bus(resources: Resources) -> None:
    _, function = one(resources, "AWS::Lambda::Function", "ApiHandler")
    variables = function["Environment"]["Variables"]
    audit, _ = one(resources, "AWS::DynamoDB::Table", "DatabaseAuditTable")
    bus = next(iter(resources("AWS::Events::EventBus")))
    assert variables["AUDIT_TABLE_NAME"] == ref(audit)
    assert variables["EVENT_BUS_NAME"] == ref(bus)
    assert function["Handler"] == "dig_api.handler.lambda_handler"
    assert function["Timeout"] == 28


def test_the_connector_is_configured_from_context_and_never_holds_a_secret_value(resources: Resources) -> None:
    _, function = one(resources, "AWS::Lambda::Function", "OptimoveHandler")
    variables = function["Environment"]["Variables"]
    assert variables["OPTIMOVE_API_BASE_URL"] == "https://api5.optimove.net"
    assert variables["OPTIMOVE_REALTIME_BASE_URL"] == "https://gateway.optimove.events"
    assert variables["OPTIMOVE_SECRET_ID"] == "dig/optimove"
    assert variables["MAX_RECEIVE_COUNT"] == "5"
    assert "apiKey" not in json.dumps(function)


# --- IAM: actions and resources ---------------------------------------------------------------


def test_the_api_may_write_the_audit_table_put_on_the_bus_and_invoke_the_sync_connector_only(
    resources: Resources,
) -> None:
    statements = statements_of(resources, "ApiHandlerRole")
    audit, _ = one(resources, "AWS::DynamoDB::Table", "DatabaseAuditTable")
    bus = next(iter(resources("AWS::Events::EventBus")))
    # Each sync entry point (the function: without SnapStart, their default, no alias; not its versions).
    syncs = [
        arn_of(one(resources, "AWS::Lambda::Function", f"{c.name.title()}SyncHandler")[0])
        for c in CONNECTORS
        if c.sync_handler
    ]
    by_action = {
        a: s["Resource"] for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert actions(statements) == {
        "dynamodb:BatchGetItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:GetItem",
        "dynamodb:Query",
        "events:PutEvents",
        "lambda:InvokeFunction",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "secretsmanager:GetSecretValue",  # the callback key; each webhook source's secret
        "secretsmanager:DescribeSecret",
        "s3:PutObject",  # presigned uploads (and their parts) under uploads/
        "s3:AbortMultipartUpload",
        "s3:GetObject",  # presigned report links under reports/
        "s3:ListBucket",  # a file's progress: its results under work/
    }
    assert by_action["dynamodb:PutItem"] == by_action["dynamodb:BatchWriteItem"] == arn_of(audit)
    assert by_action["events:PutEvents"] == arn_of(bus)
    assert sorted(by_action["lambda:InvokeFunction"], key=json.dumps) == sorted(syncs, key=json.dumps)


def test_the_connector_reads_its_secret_and_config_and_writes_the_audit_table(resources: Resources) -> None:
    statements = statements_of(resources, "OptimoveHandlerRole")
    audit, _ = one(resources, "AWS::DynamoDB::Table", "DatabaseAuditTable")
    config, _ = one(resources, "AWS::DynamoDB::Table", "DatabaseConfigTable")
    granted = {
        (a, json.dumps(s["Resource"], sort_keys=True))
        for s in statements
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    for action in ("GetItem", "BatchGetItem", "PutItem", "BatchWriteItem", "UpdateItem"):
        assert (f"dynamodb:{action}", json.dumps(arn_of(audit))) in granted
    assert ("dynamodb:GetItem", json.dumps(arn_of(config))) in granted
    assert ("dynamodb:PutItem", json.dumps(arn_of(config))) not in granted
    secret = [s for s in statements if "secretsmanager:GetSecretValue" in s["Action"]]
    assert secret
    assert ":secret:dig/optimove-??????" in json.dumps(secret[0]["Resource"])
    assert not any(a.startswith("dynamodb:Scan") or a == "dynamodb:*" for a in actions(statements))


def test_no_policy_grants_a_wildcard_resource_beyond_x_ray(resources: Resources) -> None:
    for policy in [*resources("AWS::IAM::Policy").values(), *resources("AWS::IAM::ManagedPolicy").values()]:
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Resource"] == "*":
                # X-Ray, and reading metrics: neither has resource-level permissions.
                allowed = {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "cloudwatch:GetMetricStatistics"}
                if ref(next(n for n in resources("AWS::IAM::Role") if n.startswith("FilesStateMachineRole"))) in (
                    policy["Properties"].get("Roles") or []
                ):
                    allowed |= STATE_MACHINE_WILDCARDS
                assert set(actions([statement])) <= allowed


# What Step Functions' own logging (CloudWatch Logs vended delivery) and tracing need, on "*" as AWS
# documents them: none takes a resource ARN.
STATE_MACHINE_WILDCARDS = {
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
}


def test_no_function_role_carries_a_managed_policy(resources: Resources) -> None:
    for name, role in resources("AWS::IAM::Role").items():
        if "CloudWatchRole" not in name:  # API Gateway's account-level logging role
            assert "ManagedPolicyArns" not in role["Properties"], name


def test_the_operator_policy_covers_audit_queries_replay_and_config(resources: Resources) -> None:
    _, policy = one(resources, "AWS::IAM::ManagedPolicy", "OperatorPolicy")
    granted = actions(policy["PolicyDocument"]["Statement"])
    assert {"dynamodb:Query", "dynamodb:UpdateItem", "sqs:SendMessage", "cloudformation:DescribeStacks"} <= granted
    assert "dynamodb:DeleteItem" not in granted
    assert "sqs:PurgeQueue" not in granted
    # The audit table: reads, and UpdateItem on the keys replay and erasure change; never a put.
    audit = next(n for n in resources("AWS::DynamoDB::Table") if n.startswith("DatabaseAuditTable"))
    audit_arn = json.dumps(arn_of(audit))
    on_audit = [s for s in policy["PolicyDocument"]["Statement"] if audit_arn in json.dumps(s["Resource"])]
    audit_actions = actions(on_audit)
    # Scan: `dig audit list --event-type` of a type byEventType does not hold, bounded by --scan-limit.
    assert audit_actions == {
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:Query",
        "dynamodb:Scan",
        "dynamodb:UpdateItem",
    }
    [update] = [s for s in on_audit if s.get("Sid") == "ReplayAndEraseByConditionedUpdates"]
    assert update["Action"] == "dynamodb:UpdateItem"
    # The core's keys, then each connector's own erasure keys (CataBoom's accounts: its manifest names them).
    assert update["Condition"] == {
        "ForAllValues:StringLike": {
            "dynamodb:LeadingKeys": [
                *("MSG#*", "RUN#*", "CONTACT#*", "CONTACTEMAIL#*", "RECEIPT#*", "STATE#*", "ERASED"),
                *("CATABOOM#ACCOUNT#*", "CATABOOM#MEMBER#*"),
            ]
        }
    }
    assert [
        s
        for s in on_audit
        if s.get("Sid") != "ReplayAndEraseByConditionedUpdates" and "dynamodb:UpdateItem" in s["Action"]
    ] == []
    [alarms] = [s for s in policy["PolicyDocument"]["Statement"] if s.get("Sid") == "SeeTheStacksAlarms"]
    assert alarms["Action"] == "cloudwatch:DescribeAlarms"
    assert ":alarm:Dig-dev-*" in json.dumps(alarms["Resource"])


# --- the API ---------------------------------------------------------------------------------


def test_every_route_is_authorized_by_the_jwt_authorizer_and_validated(resources: Resources) -> None:
    methods = dict(resources("AWS::ApiGateway::Method").items())
    [method] = [m for name, m in methods.items() if "proxyANY" in name]
    [callback] = [m for name, m in methods.items() if "callbacks" in name]
    # The one route without a bearer token: provider callbacks, to a signed URL checked by the Lambda.
    assert callback["Properties"]["AuthorizationType"] == "NONE"
    assert callback["Properties"]["HttpMethod"] == "POST"
    assert callback["Properties"]["RequestParameters"] == {
        "method.request.querystring.sig": True,
        "method.request.querystring.exp": True,
    }
    assert callback["Properties"].get("ApiKeyRequired") in (None, False)  # no authorizer, no usage key
    assert method["Properties"]["ApiKeyRequired"] is True
    authorizer, authorizer_properties = one(resources, "AWS::ApiGateway::Authorizer", "ApiTokenAuthorizer")
    assert method["Properties"]["AuthorizationType"] == "CUSTOM"
    assert method["Properties"]["AuthorizerId"] == ref(authorizer)
    assert method["Properties"]["RequestParameters"] == {"method.request.header.Authorization": True}
    assert authorizer_properties["Type"] == "TOKEN"
    assert authorizer_properties["IdentitySource"] == "method.request.header.Authorization"
    _, validator = one(resources, "AWS::ApiGateway::RequestValidator", "ApiRestApiRequestValidator")
    assert validator["ValidateRequestParameters"] is True


def test_each_client_is_throttled_on_its_own_usage_plan_key_named_by_the_authorizer(
    resources: Resources, template: dict[str, Any]
) -> None:
    [api] = resources("AWS::ApiGateway::RestApi").values()
    assert api["Properties"]["ApiKeySourceType"] == "AUTHORIZER"
    _, plan = one(resources, "AWS::ApiGateway::UsagePlan", "ApiRestApiPerClient")
    assert plan["Throttle"] == {"RateLimit": 50, "BurstLimit": 100}
    [key] = [r["Properties"] for r in resources("AWS::ApiGateway::ApiKey").values()]
    assert key["Value"] == "dig-usage-dev-client-es-loyalty"
    assert len(resources("AWS::ApiGateway::UsagePlanKey")) == 1
    _, authorizer = one(resources, "AWS::Lambda::Function", "ApiAuthorizer")
    assert authorizer["Environment"]["Variables"]["USAGE_KEY_PREFIX"] == "dig-usage-dev-client-"


def test_tokens_live_at_most_a_day_and_revocations_hold_within_a_minute(resources: Resources) -> None:
    _, authorizer = one(resources, "AWS::Lambda::Function", "ApiAuthorizer")
    variables = authorizer["Environment"]["Variables"]
    assert variables["JWT_MAX_LIFETIME_SECONDS"] == "86400"
    assert "CONFIG_TABLE_NAME" in variables
    _, cached = one(resources, "AWS::ApiGateway::Authorizer", "ApiTokenAuthorizer")
    assert cached["AuthorizerResultTtlInSeconds"] == 30  # + the authorizer's own 30 s cache of the list
    statements = statements_of(resources, "ApiAuthorizerRole")
    [config] = [s for s in statements if "dynamodb" in json.dumps(s["Action"])]
    assert config["Action"] == "dynamodb:GetItem"
    config_table = next(n for n in resources("AWS::DynamoDB::Table") if n.startswith("DatabaseConfigTable"))
    assert config["Resource"] == arn_of(config_table)


def test_the_callback_and_webhook_routes_are_never_traced_since_x_ray_records_their_urls(resources: Resources) -> None:
    rules = sorted(
        (r["Properties"]["SamplingRule"] for r in resources("AWS::XRay::SamplingRule").values()),
        key=lambda rule: rule["Priority"],
    )[:2]  # the first two; the third samples the rest (below)
    assert [(r["Priority"], r["FixedRate"], r["ReservoirSize"]) for r in rules] == [(1, 0, 0), (2, 0, 0)]
    assert [(r["URLPath"], r["HTTPMethod"], r["ServiceName"]) for r in rules] == [
        ("*/v1/callbacks/*", "POST", "dig-dev/dev"),
        ("*/v1/inbound/*", "POST", "dig-dev/dev"),
    ]


def test_providers_webhooks_reach_the_api_without_a_token_and_the_api_reads_only_their_secrets(
    resources: Resources,
) -> None:
    methods = [
        m["Properties"]
        for m in resources("AWS::ApiGateway::Method").values()
        if m["Properties"]["HttpMethod"] == "POST" and m["Properties"]["AuthorizationType"] == "NONE"
    ]
    assert len(methods) == 2  # the signed callbacks, and the webhooks
    [api] = [r["Properties"] for n, r in resources("AWS::Lambda::Function").items() if n.startswith("ApiHandler")]
    sources = json.loads(joined(api["Environment"]["Variables"]["INBOUND_SOURCES"]))
    # CataBoom answers its own (its codes): the API invokes its sync entry point, reads no secret.
    entry = f"<GetAtt:{one(resources, 'AWS::Lambda::Function', 'CataboomSyncHandler')[0]}.Arn>"
    answered = {"tolerance_seconds": 300, "encoding": "hex", "prefix": "", "separator": ".", "layout": "value"}
    answered |= {"postback_answer": "VERIFIED", "handshake_keys": [], "verification": "connector", "function": entry}
    assert sources.pop("cataboom") == {
        "writeback": answered | {"max_body_bytes": 16384},
        "launch": answered | {"max_body_bytes": 4096},
    }
    assert sources == {
        "marketo": {
            "unsubscribes": {
                "verification": "token",
                "header": "X-DIG-Webhook-Token",
                "tolerance_seconds": 300,
                "encoding": "hex",
                "prefix": "",
                "separator": ".",
                "layout": "value",
                "postback_answer": "VERIFIED",
                "max_body_bytes": 16384,
                "handshake_keys": [],
                "secretName": "dig/marketo/webhook",
            }
        },
        "sfmc": {
            "ens": {
                "verification": "hmac",
                "header": "x-sfmc-ens-signature",
                "tolerance_seconds": 300,
                "encoding": "base64",
                "prefix": "",
                "separator": ".",
                "layout": "value",
                "postback_answer": "VERIFIED",
                "max_body_bytes": 262144,
                # ENS's one unsigned post: the callback's verification, completed by the connector.
                "handshake_keys": ["callbackId", "verificationKey"],
                "secretName": "dig/sfmc/ens",
            }
        },
        "tipalti": {
            "payments": {
                "verification": "hmac",
                "header": "tipalti-signature",
                "tolerance_seconds": 300,
                "encoding": "hex",
                "prefix": "",
                "separator": "-",
                "layout": "t=,v=",
                "postback_answer": "VERIFIED",
                "max_body_bytes": 65536,
                "handshake_keys": [],
                "secretName": "dig/tipalti/webhook",
            }
        },
    }
    statements = statements_of(resources, "ApiHandlerRole")
    secrets = [s["Resource"] for s in statements if "secretsmanager:GetSecretValue" in json.dumps(s["Action"])]
    assert any("secret:dig/marketo/webhook-??????" in json.dumps(r) for r in secrets)
    assert any("secret:dig/sfmc/ens-??????" in json.dumps(r) for r in secrets)
    assert not any("dig/cataboom" in json.dumps(r) for r in secrets)
    queried = [s["Resource"] for s in statements if s["Action"] == "dynamodb:Query"]
    assert any("/index/byEventType" in json.dumps(r) for r in queried)  # GET /v1/inbound-events


def test_the_connectors_that_emit_put_on_the_bus_and_the_one_delivering_to_es_loyalty_reads_its_secret(
    resources: Resources,
) -> None:
    bus = next(iter(resources("AWS::Events::EventBus")))
    for role in (
        "MarketoHandlerRole",
        "SfmcHandlerRole",
        "TipaltiHandlerRole",
        "OptimoveUnsubscribesJobRole",
        "CataboomHandlerRole",
        "CataboomSyncHandlerRole",
    ):
        puts = [s for s in statements_of(resources, role) if s["Action"] == "events:PutEvents"]
        assert [s["Resource"] for s in puts] == [arn_of(bus)], role
    assert not [s for s in statements_of(resources, "OptimoveFeedJobRole") if s["Action"] == "events:PutEvents"]
    rules = {
        json.dumps(r["Properties"]["EventPattern"], sort_keys=True)
        for n, r in resources("AWS::Events::Rule").items()
        if n.startswith(("EsloyaltyImmediateRule", "MarketoWebhookRule", "SfmcWebhookRule", "TipaltiWebhookRule"))
    }
    assert rules == {
        json.dumps(
            {
                "source": ["dig.inbound"],
                "detail-type": [
                    "MEMBER_CONSENT_CHANGED",
                    "POINTS_AWARD_REQUESTED",
                    "PAYOUT_STATUS_CHANGED",
                    "GAME_PLAY_LINK_ISSUED",
                ],
            },
            sort_keys=True,
        ),
        json.dumps({"source": ["dig.inbound.received"], "detail-type": ["INBOUND_RECEIVED.marketo"]}, sort_keys=True),
        json.dumps({"source": ["dig.inbound.received"], "detail-type": ["INBOUND_RECEIVED.sfmc"]}, sort_keys=True),
        json.dumps({"source": ["dig.inbound.received"], "detail-type": ["INBOUND_RECEIVED.tipalti"]}, sort_keys=True),
    }


def test_the_waf_limits_unauthenticated_callers_and_single_addresses(resources: Resources) -> None:
    [acl] = [r["Properties"] for r in resources("AWS::WAFv2::WebACL").values()]
    rates = {
        rule["Name"]: rule["Statement"]["RateBasedStatement"]
        for rule in acl["Rules"]
        if "RateBasedStatement" in rule["Statement"]
    }
    assert {name: rate["Limit"] for name, rate in rates.items()} == {
        "UnauthenticatedPerSourceIp": 100,
        "ProviderPostsPerSourceIp": 6000,
        "RatePerSourceIp": 15000,
    }
    providers = rates["ProviderPostsPerSourceIp"]["ScopeDownStatement"]["OrStatement"]["Statements"]
    assert [p["ByteMatchStatement"]["SearchString"] for p in providers] == ["/v1/callbacks/", "/v1/inbound/"]
    unauthenticated = json.dumps(rates["UnauthenticatedPerSourceIp"]["ScopeDownStatement"])
    assert '"SingleHeader": {"Name": "authorization"}' in unauthenticated
    assert "/v1/callbacks/" in unauthenticated
    assert "/v1/inbound/" in unauthenticated


def test_the_synchronous_flow_has_reserved_concurrency(resources: Resources) -> None:
    syncs = [r["Properties"] for n, r in resources("AWS::Lambda::Function").items() if "SyncHandler" in n]
    assert syncs
    assert {p["ReservedConcurrentExecutions"] for p in syncs} == {10}


def test_the_stage_logs_access_and_errors_without_bodies_and_is_throttled(resources: Resources) -> None:
    _, stage = one(resources, "AWS::ApiGateway::Stage", "ApiRestApiDeploymentStage")
    assert "DestinationArn" in stage["AccessLogSetting"]
    [settings] = stage["MethodSettings"]
    assert settings["LoggingLevel"] == "ERROR"
    assert settings["DataTraceEnabled"] is False
    assert settings["ThrottlingRateLimit"] == 100
    assert settings["ThrottlingBurstLimit"] == 200
    assert stage["TracingEnabled"] is True
    [_, association] = next((n, r) for n, r in resources("AWS::WAFv2::WebACLAssociation").items())
    assert association["Properties"]["ResourceArn"]


def test_gateway_refusals_answer_in_the_apis_error_shape(resources: Resources) -> None:
    responses = {
        r["Properties"]["ResponseType"]: r["Properties"] for r in resources("AWS::ApiGateway::GatewayResponse").values()
    }
    assert responses["UNAUTHORIZED"]["StatusCode"] == "401"
    assert responses["MISSING_AUTHENTICATION_TOKEN"]["StatusCode"] == "404"
    body = json.loads(responses["ACCESS_DENIED"]["ResponseTemplates"]["application/json"])
    assert body == {
        "error": {"code": "FORBIDDEN", "message": "the token does not allow this route", "details": []},
        "requestId": "$context.requestId",
    }


def test_keys_are_generated_by_secrets_manager_never_written_in_the_template(resources: Resources) -> None:
    secrets = resources("AWS::SecretsManager::Secret")
    assert len(secrets) == 2  # the JWT signing key and the callback key
    for secret in secrets.values():
        assert "SecretString" not in secret["Properties"]
        assert secret["Properties"]["GenerateSecretString"]["GenerateStringKey"] == "key"


def test_provider_callbacks_reach_the_connectors_immediate_lane_by_a_rule_of_their_own(resources: Resources) -> None:
    """Not the coalescing queue: there a callback waited out the batching window (issue #28)."""
    _, rule = one(resources, "AWS::Events::Rule", "OptimoveCallbackRule")
    assert rule["EventPattern"] == {"source": ["dig.callbacks"], "detail-type": ["CALLBACK.optimove"]}
    immediate, _ = one(resources, "AWS::SQS::Queue", "OptimoveImmediateQueue")
    assert rule["Targets"][0]["Arn"] == arn_of(immediate)
    assert rule["Targets"][0]["DeadLetterConfig"]["Arn"] == arn_of(
        one(resources, "AWS::SQS::Queue", "OptimoveRuleTargetDeadLetterQueue")[0]
    )
    _, function = one(resources, "AWS::Lambda::Function", "OptimoveHandler")
    variables = function["Environment"]["Variables"]
    assert "CALLBACK_KEY_SECRET_ARN" in variables
    assert "/v1/callbacks" in json.dumps(variables["DIG_CALLBACK_URL"])


def test_a_schedule_puts_the_results_check_on_the_connectors_queue_every_five_minutes(resources: Resources) -> None:
    _, rule = one(resources, "AWS::Events::Rule", "OptimoveResultsCheckSchedule")
    assert rule["ScheduleExpression"] == "rate(5 minutes)"
    queue, _ = one(resources, "AWS::SQS::Queue", "OptimoveQueue")
    [target] = rule["Targets"]
    assert target["Arn"] == arn_of(queue)
    assert json.loads(target["Input"]) == {"source": "dig.schedule", "detail-type": "CHECK", "detail": {}}


def test_the_connector_may_send_again_to_its_own_queue_and_query_only_the_status_index(resources: Resources) -> None:
    statements = statements_of(resources, "OptimoveHandlerRole")
    queue, _ = one(resources, "AWS::SQS::Queue", "OptimoveQueue")
    audit, _ = one(resources, "AWS::DynamoDB::Table", "DatabaseAuditTable")
    [send] = [s for s in statements if "sqs:SendMessage" in s["Action"]]
    assert send["Resource"] == arn_of(queue)
    [query] = [s for s in statements if "dynamodb:Query" in s["Action"]]
    assert query["Action"] == "dynamodb:Query"
    assert query["Resource"] == {"Fn::Join": ["", [arn_of(audit), "/index/byConnectorStatus"]]}
    _, function = one(resources, "AWS::Lambda::Function", "OptimoveHandler")
    variables = function["Environment"]["Variables"]
    assert variables["CONNECTOR_QUEUE_URL"] == ref(queue)
    assert variables["CONTACT_RETENTION_DAYS"] == "400"
    assert variables["COALESCING_WINDOW_SECONDS"] == "20.0"  # its event source mapping's window, for its holds


def test_results_overdue_or_unreadable_raise_an_alarm_naming_the_runbook(resources: Resources) -> None:
    alarms = {
        a["Properties"]["MetricName"]: a["Properties"]
        for a in resources("AWS::CloudWatch::Alarm").values()
        if "MetricName" in a["Properties"]
    }
    for metric in ("CallbackResultsOverdue", "CallbackResultsUnreadable"):
        alarm = alarms[metric]
        assert (alarm["Namespace"], alarm["Threshold"], alarm["Statistic"]) == ("DIG", 1, "Sum")
        assert alarm["Dimensions"] == [{"Name": "service", "Value": "dig-connector-optimove"}]
        assert "Runbook: Results that never came back." in alarm["AlarmDescription"]


# --- the bus and observability ---------------------------------------------------------------


def test_the_bus_archives_every_event_for_the_context_retention(resources: Resources) -> None:
    [archive] = resources("AWS::Events::Archive").values()
    assert archive["Properties"]["RetentionDays"] == 30
    assert archive["Properties"]["EventPattern"] == {"source": ["dig.api", "dig.inbound"]}


def test_alarms_watch_dead_letters_errors_throttles_and_queue_age(resources: Resources) -> None:
    alarms = [a["Properties"] for a in resources("AWS::CloudWatch::Alarm").values()]
    metrics = sorted((a["Namespace"], a["MetricName"]) for a in alarms if "MetricName" in a)
    # Each connector's two dead-letter queues, and the file flow's.
    assert metrics.count(("AWS/SQS", "ApproximateNumberOfMessagesVisible")) == 2 * len(CONNECTORS) + 1
    # Each lane's queue.
    lanes = sum(len(c.lanes) for c in CONNECTORS)
    assert metrics.count(("AWS/SQS", "ApproximateAgeOfOldestMessage")) == lanes > len(CONNECTORS)
    # The API, the file flow's three steps, each connector's two functions and its jobs'.
    functions = 1 + 3 + sum(1 + bool(c.sync_handler) + len(c.scheduled) for c in CONNECTORS)
    assert metrics.count(("AWS/Lambda", "Errors")) == metrics.count(("AWS/Lambda", "Throttles")) == functions
    assert metrics.count(("AWS/States", "ExecutionsFailed")) == 1
    # Each job's day late past the provider's readiness time, and an expected input absent.
    jobs = sum(1 for c in CONNECTORS for job in c.scheduled if job.reports_lateness)
    assert metrics.count(("DIG", "JobLate")) == metrics.count(("DIG", "JobInputMissing")) == jobs == 1  # the feed
    assert all(a["AlarmActions"] for a in alarms)


def test_outputs_name_what_operators_and_the_cli_need(template: dict[str, Any]) -> None:
    assert {
        "ApiUrl",
        "AuditTableName",
        "ConfigTableName",
        "EventBusName",
        "OptimoveQueueUrl",
        "OptimoveDeadLetterQueueUrl",
        "OperatorPolicyArn",
        "SigningKeySecretArn",
    } <= set(template["Outputs"])


# --- the code that ships -------------------------------------------------------------------------


def asset_directory(cloud_assembly: Path, code: dict[str, Any]) -> Path:
    """The staged asset behind a Code/Content property (its S3 key is <hash>.zip)."""
    key = code.get("S3Key")
    assert isinstance(key, str), code
    return cloud_assembly / f"asset.{key.removesuffix('.zip')}"


def test_lambda_assets_hold_no_simulator_test_local_stack_or_cli_code(
    cloud_assembly: Path, resources: Resources
) -> None:
    for function in resources("AWS::Lambda::Function").values():
        asset = asset_directory(cloud_assembly, function["Properties"]["Code"])
        shipped = {p.relative_to(asset).parts[0] for p in asset.rglob("*.py")}
        assert shipped <= {"dig_contracts", "db", "dig_connector_kit", "dig_api", "connectors"}, shipped
        assert "dig_contracts" in shipped
        assert not list(asset.rglob("*simulator*"))
        assert not list(asset.rglob("sample_config.json"))
        assert not [p for p in asset.rglob("*") if p.name in ("tests", "testing", "local", "conftest.py")]


def test_the_dependencies_layers_are_built_for_arm64_and_the_lambda_python(
    cloud_assembly: Path, resources: Resources
) -> None:
    layers = resources("AWS::Lambda::LayerVersion")
    for layer in layers.values():
        assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
        assert layer["Properties"]["CompatibleRuntimes"] == ["python3.14"]
    [shared] = [v for n, v in layers.items() if "Job" not in n]
    root = asset_directory(cloud_assembly, shared["Properties"]["Content"]) / "python"
    [core] = list(root.glob("pydantic_core/_pydantic_core*.so"))
    assert "cpython-314-aarch64-linux-gnu" in core.name
    assert not list(root.glob("pyarrow"))  # only the feed job's own layer has it
    # The feed job's: pyarrow for arm64 without what writing Parquet does not load, and with the
    # shared layer and the code under Lambda's 250 MB unzipped.
    [feed] = [v for n, v in layers.items() if n.startswith("OptimoveFeedJobLayer")]
    feed_root = asset_directory(cloud_assembly, feed["Properties"]["Content"]) / "python"
    assert list(feed_root.glob("pyarrow/lib.cpython-314-aarch64-linux-gnu.so"))  # built for the Lambda runtime
    assert list(feed_root.glob("pyarrow/_parquet.cpython-314-aarch64-linux-gnu.so"))
    assert not list(feed_root.glob("pyarrow/*flight*"))
    assert not list(feed_root.glob("pyarrow/include"))
    assert list(feed_root.glob("snowflake/connector/__init__.py"))  # the Snowflake destination's connector
    assert not list(root.glob("snowflake"))  # in the feed job's layer only
    [function] = [f for n, f in resources("AWS::Lambda::Function").items() if n.startswith("OptimoveFeedJob")]
    code = asset_directory(cloud_assembly, function["Properties"]["Code"])
    total = sum(f.stat().st_size for d in (root, feed_root, code) for f in d.rglob("*") if f.is_file())
    assert total < 250 * 1024 * 1024


def test_code_ships_bytecode_for_the_lambda_python_or_the_synth_says_what_cold_starts_cost(
    cloud_assembly: Path, resources: Resources
) -> None:
    assets = [
        asset_directory(cloud_assembly, layer["Properties"]["Content"])
        for layer in resources("AWS::Lambda::LayerVersion").values()
    ]
    assets += [
        asset_directory(cloud_assembly, f["Properties"]["Code"]) for f in resources("AWS::Lambda::Function").values()
    ]
    metadata = json.loads((cloud_assembly / "Dig-dev.metadata.json").read_text())
    warnings = [e["data"] for entries in metadata.values() for e in entries if e["type"] == "aws:cdk:warning"]
    no_bytecode = [w for w in warnings if "@dig/bundling:no-bytecode" in w]
    for asset in assets:
        modules = {p.relative_to(asset).with_suffix("") for p in asset.rglob("*.py")}
        compiled = {p.parent.parent.relative_to(asset) / p.name.split(".")[0] for p in asset.rglob("__pycache__/*.pyc")}
        if bytecode_python() is None:
            assert compiled == set(), asset
        else:
            assert {p.name for p in asset.rglob("*.pyc")} == {p.name for p in asset.rglob("*.cpython-314.pyc")}
            assert modules <= compiled, sorted(modules - compiled)[:5]
    if bytecode_python() is None:
        [warning] = no_bytecode
        assert "every cold start compiles" in warning
        assert "python3.14" in warning
    else:
        assert no_bytecode == []


# --- validation --------------------------------------------------------------------------------


def test_cdk_nag_aws_solutions_finds_nothing_unacknowledged(cloud_assembly: Path) -> None:
    report = json.loads((cloud_assembly / "validation-report.json").read_text())
    [aws_solutions] = report["pluginReports"]
    assert aws_solutions["pluginName"] == "AwsSolutions"
    assert aws_solutions["violations"] == []


def test_cfn_lint_finds_no_error(cloud_assembly: Path) -> None:
    from cfnlint.api import lint_file

    matches = lint_file(cloud_assembly / "Dig-dev.template.json")
    # W3005 (a DependsOn already implied by a GetAtt) is emitted by CDK itself for function roles.
    assert {m.rule.id for m in matches} <= {"W3005"}, [str(m) for m in matches]


def snap_started(resources: dict[str, Any]) -> set[str]:
    return {
        name
        for name, r in resources.items()
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"].get("SnapStart") == {"ApplyOn": "PublishedVersions"}
    }


def test_the_request_path_answers_from_snapstart_versions_through_their_live_aliases(
    template: dict[str, Any], resources: Resources
) -> None:
    every = template["Resources"]
    # snapStart=api (the default): what every request passes through; a connector's synchronous entry point
    # takes a cold start instead of a cached snapshot's monthly cost (snapStart=all, below).
    request_path = {"ApiHandler", "ApiAuthorizer"}
    assert {name.rstrip("0123456789ABCDEF") for name in snap_started(every)} == request_path
    aliases = {
        name: r["Properties"]
        for name, r in resources("AWS::Lambda::Alias").items()
        if r["Properties"]["Name"] == "live"
    }
    for function in request_path:
        [properties] = [p for n, p in aliases.items() if n.startswith(f"{function}Live")]
        # On the version CDK publishes from the current code and configuration.
        [version] = [n for n in resources("AWS::Lambda::Version") if n.startswith(f"{function}CurrentVersion")]
        assert properties["FunctionVersion"] == {"Fn::GetAtt": [version, "Version"]}
    api_alias = next(n for n in aliases if n.startswith("ApiHandlerLive"))
    integrations = [m["Properties"]["Integration"]["Uri"] for m in resources("AWS::ApiGateway::Method").values()]
    assert integrations
    assert all(ref(api_alias) in uri["Fn::Join"][1] for uri in integrations)
    [(_, authorizer)] = resources("AWS::ApiGateway::Authorizer").items()
    assert (
        ref(next(n for n in aliases if n.startswith("ApiAuthorizerLive")))
        in authorizer["Properties"]["AuthorizerUri"]["Fn::Join"][1]
    )
    # API Gateway may invoke the aliases (and nothing else of those functions).
    permitted = {json.dumps(p["Properties"]["FunctionName"]) for p in resources("AWS::Lambda::Permission").values()}
    assert json.dumps(ref(api_alias)) in permitted
    assert json.dumps(arn_of(one(resources, "AWS::Lambda::Function", "ApiHandler")[0])) not in permitted


@pytest.fixture(scope="module")
def deploy_time_template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One synth for the deploy-time settings the default template leaves out (a synth takes ~25 s)."""
    outdir = synthesize(
        tmp_path_factory.mktemp("feed"),
        stage="feedtest",
        optimoveFeedBucket="optimove-tenant-123",
        optimoveFeedRoleArn="arn:aws:iam::111111111111:role/optimove-writer",
        optimoveFeedKmsKeyArn="arn:aws:kms:us-east-1:111111111111:key/abc",
        snapStart="all",
    )
    return dict(json.loads((outdir / "Dig-feedtest.template.json").read_text()))


def test_snapstart_all_adds_each_connectors_synchronous_entry_point_invoked_through_its_alias(
    deploy_time_template: dict[str, Any],
) -> None:
    every = deploy_time_template["Resources"]
    sync = {f"{c.name.title()}SyncHandler" for c in CONNECTORS if c.sync_handler}
    assert sync
    assert {name.rstrip("0123456789ABCDEF") for name in snap_started(every)} == {"ApiHandler", "ApiAuthorizer", *sync}
    [api_role] = [n for n, r in every.items() if r["Type"] == "AWS::IAM::Policy" and n.startswith("ApiHandlerRole")]
    invoked = json.dumps(every[api_role]["Properties"]["PolicyDocument"])
    for function in sync:
        [alias] = [n for n in every if n.startswith(f"{function}Live")]
        assert alias in invoked


def test_iam_authentication_no_snapstart_and_no_pitr_are_selectable_by_context(tmp_path: Path) -> None:
    outdir = synthesize(
        tmp_path / "iam",
        apiAuth="iam",
        stage="prod",
        optimoveApiBaseUrl="https://api4.optimove.net",
        snapStart="false",
        pointInTimeRecovery="false",
        queueTracing="Active",
    )
    template = json.loads((outdir / "Dig-prod.template.json").read_text())
    methods = [r for r in template["Resources"].values() if r["Type"] == "AWS::ApiGateway::Method"]
    assert sorted(m["Properties"]["AuthorizationType"] for m in methods) == [
        "AWS_IAM",
        "NONE",
        "NONE",
    ]  # callbacks, webhooks
    assert not [r for r in template["Resources"].values() if r["Type"] == "AWS::ApiGateway::Authorizer"]
    functions = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    assert any(
        f["Environment"]["Variables"].get("OPTIMOVE_API_BASE_URL") == "https://api4.optimove.net" for f in functions
    )
    report = json.loads((outdir / "validation-report.json").read_text())
    assert report["pluginReports"][0]["violations"] == []
    assert not snap_started(template["Resources"])
    assert not [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Alias"]
    # What `dig cost` prices as DynamoDB PITR, switched off (and cdk-nag's DDB3 acknowledged, above).
    tables = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::DynamoDB::Table"]
    assert [t["PointInTimeRecoverySpecification"] for t in tables] == [{"PointInTimeRecoveryEnabled": False}] * 2
    assert {f["TracingConfig"]["Mode"] for f in functions} == {"Active"}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("apiAuth", "basic"),
        ("stage", "dev stage"),
        ("snapStart", "maybe"),
        ("callbackValidityHours", "200"),
        ("queueTracing", "Sampled"),
    ],
)
def test_bad_context_is_refused_with_a_clear_error(tmp_path: Path, key: str, value: str) -> None:
    with pytest.raises(ValueError, match=key):
        synthesize(tmp_path / "bad", **{key: value})


# --- the operator's view -----------------------------------------------------------------------------

README = Path(__file__).resolve().parents[2] / "README.md"


def runbook_sections() -> set[str]:
    text = README.read_text()
    runbook = text[text.index("### Runbook") :]
    runbook = runbook[: runbook.index("\n## ")]
    return {line.removeprefix("#### ").strip() for line in runbook.splitlines() if line.startswith("#### ")}


def test_every_alarm_names_a_runbook_section_of_the_readme_and_a_first_command(resources: Resources) -> None:
    sections = runbook_sections()
    alarms = [a["Properties"] for a in resources("AWS::CloudWatch::Alarm").values()]
    assert len(alarms) >= 10
    for alarm in alarms:
        description = alarm["AlarmDescription"]
        what, _, rest = description.partition(". Runbook: ")
        section, _, first = rest.partition(". First: ")
        assert what
        assert section in sections, (section, sorted(sections))
        assert first.startswith("dig ")
        assert first.endswith("--stack Dig-dev")


def test_a_failed_delivery_rate_and_refused_credentials_raise_alarms_per_connector(resources: Resources) -> None:
    alarms = {n: a["Properties"] for n, a in resources("AWS::CloudWatch::Alarm").items()}
    [rate] = [a for n, a in alarms.items() if n.startswith("ObservabilityOptimoveFailedDeliveryRate")]
    expression = next(m for m in rate["Metrics"] if "Expression" in m)
    assert "100 * failed / (failed + delivered + skipped)" in expression["Expression"]
    used = {m["Id"]: m["MetricStat"]["Metric"]["MetricName"] for m in rate["Metrics"] if "MetricStat" in m}
    assert used == {"failed": "MessagesFailed", "delivered": "MessagesDelivered", "skipped": "MessagesSkipped"}
    assert rate["Threshold"] == 5
    [auth] = [a for n, a in alarms.items() if n.startswith("ObservabilityOptimoveProviderAuthRefused")]
    assert (auth["MetricName"], auth["Threshold"]) == ("ProviderAuthRefused", 1)
    assert "Runbook: The provider refuses DIG's credentials." in auth["AlarmDescription"]


def test_messages_held_for_a_spent_daily_quota_raise_an_alarm_where_the_provider_has_one(resources: Resources) -> None:
    # Held messages come back as new, delayed messages: no queue-age alarm sees them.
    alarms = {n: a["Properties"] for n, a in resources("AWS::CloudWatch::Alarm").items()}
    held = {n: a for n, a in alarms.items() if a.get("MetricName") == "MessagesHeld"}
    [(name, alarm)] = held.items()  # Marketo's (manifest provider_calls_per_day); Optimove and Tipalti hold by design
    assert name.startswith("ObservabilityMarketoMessagesHeld")
    assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {"service": "dig-connector-marketo"}
    assert (alarm["Threshold"], alarm["Statistic"]) == (1, "Sum")
    assert "Runbook: A provider's daily quota spent." in alarm["AlarmDescription"]
    assert alarm["AlarmDescription"].endswith(
        "First: dig audit list --connector marketo --status PENDING --since 1h --stack Dig-dev"
    )


def dashboard_body(resources: Resources) -> dict[str, Any]:
    [dashboard] = resources("AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]
    if isinstance(body, dict):  # Fn::Join of text and tokens: tokens become their logical ids
        body = "".join(
            part if isinstance(part, str) else json.dumps(part).replace('"', "'") for part in body["Fn::Join"][1]
        )
    return json.loads(body)


def dashboard_metrics(body: dict[str, Any]) -> list[tuple[str, str, dict[str, str]]]:
    found = []
    for widget in body["widgets"]:
        for metric in widget.get("properties", {}).get("metrics", []):
            fields = [f for f in metric if not isinstance(f, dict)]
            if len(fields) >= 2:
                namespace, name, *pairs = fields
                found.append((namespace, name, dict(zip(pairs[::2], pairs[1::2], strict=True))))
    return found


def test_the_dashboard_shows_only_metrics_the_code_emits_or_aws_publishes(resources: Resources) -> None:
    from dig_api.errors import REJECTION_CODES
    from dig_contracts.metrics import ApiMetric, ConnectorMetric, JobMetric, rejected_metric

    emitted = {
        "dig-api": {str(m) for m in ApiMetric} | {rejected_metric(c) for c in REJECTION_CODES},
        **{
            f"dig-connector-{c.name}": {str(m) for m in ConnectorMetric}
            | ({str(m) for m in JobMetric} if c.scheduled else set())
            for c in CONNECTORS
        },
    }
    metrics = dashboard_metrics(dashboard_body(resources))
    dig = [(name, dims) for namespace, name, dims in metrics if namespace == "DIG"]
    assert dig
    for name, dims in dig:
        assert set(dims) == {"service"}
        assert name in emitted[dims["service"]], (name, dims)
    aws = {namespace for namespace, _, _ in metrics if namespace != "DIG"}
    assert aws == {"AWS/ApiGateway", "AWS/SQS", "AWS/Events"}
    shown = {name for name, dims in dig if dims["service"] == "dig-connector-optimove"}
    assert shown == {str(m) for m in ConnectorMetric} | {str(m) for m in JobMetric}  # Optimove has a feed job


def test_the_dashboard_covers_every_connector_and_every_alarm(resources: Resources) -> None:
    body = dashboard_body(resources)
    titles = [w["properties"].get("title", "") for w in body["widgets"]]
    for connector in CONNECTORS:
        assert any(t.startswith(f"{connector.name}: ") for t in titles), connector.name
    [status] = [w for w in body["widgets"] if w["properties"].get("title") == "Alarms"]
    assert len(status["properties"]["alarms"]) == len(resources("AWS::CloudWatch::Alarm"))
    [calls] = [w for w in body["widgets"] if w["properties"].get("title", "").startswith("optimove: provider calls")]
    assert calls["properties"]["annotations"]["horizontal"][0]["value"] == 300


# --- scheduled jobs (Optimove's daily feed) ---------------------------------------------------------


def test_the_feed_job_runs_on_a_schedule_with_access_to_its_extracts_its_state_and_nothing_outside(
    resources: Resources,
) -> None:
    function, _ = one(resources, "AWS::Lambda::Function", "OptimoveFeedJob")
    [schedule] = [
        s
        for s in resources("AWS::Scheduler::Schedule").values()
        if s["Properties"]["Target"]["Arn"] == arn_of(function)
    ]
    props = schedule["Properties"]
    assert props["ScheduleExpression"] == "rate(15 minutes)"
    job = resources("AWS::Lambda::Function")[function]["Properties"]
    assert (job["MemorySize"], job["Timeout"], job["EphemeralStorage"]) == (1769, 900, {"Size": 4096})
    assert props["Target"]["Arn"] == arn_of(function)
    role = props["Target"]["RoleArn"]["Fn::GetAtt"][0]
    [invoke] = statements_of(resources, role)
    assert (invoke["Action"], invoke["Resource"]) == ("lambda:InvokeFunction", arn_of(function))
    statements = statements_of(resources, "OptimoveFeedJobRole")
    files_bucket, _ = one(resources, "AWS::S3::Bucket", "FilesBucket")
    granted = {
        (a, json.dumps(s["Resource"], sort_keys=True))
        for s in statements
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    state = {"Fn::Join": ["", [arn_of(files_bucket), "/jobs/optimove/feed/*"]]}
    assert ("s3:PutObject", json.dumps(state, sort_keys=True)) in granted
    assert ("s3:GetObject", json.dumps(state, sort_keys=True)) in granted
    [listing] = [s for s in statements if s["Action"] == "s3:ListBucket"]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["jobs/optimove/feed/*"]}}
    # No destination, role or key was named at deploy time: nothing outside DIG.
    assert not {a for a in actions(statements) if a.startswith(("sts:", "kms:"))}
    assert all("arn:aws:s3:::" not in json.dumps(s["Resource"]) for s in statements)
    assert {a for a in actions(statements) if a.startswith("dynamodb:")} == {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
    }


def test_the_feed_jobs_destination_role_and_key_come_from_deploy_time_settings(
    deploy_time_template: dict[str, Any],
) -> None:
    template = deploy_time_template

    def of_type(kind: str) -> dict[str, dict[str, Any]]:
        return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}

    statements = statements_of(of_type, "OptimoveFeedJobRole")
    by_action = {
        a: s["Resource"] for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert by_action["s3:AbortMultipartUpload"] == "arn:aws:s3:::optimove-tenant-123/*"
    assert by_action["sts:AssumeRole"] == "arn:aws:iam::111111111111:role/optimove-writer"
    assert by_action["kms:GenerateDataKey"] == by_action["kms:Decrypt"] == "arn:aws:kms:us-east-1:111111111111:key/abc"
    [function] = [f for n, f in of_type("AWS::Lambda::Function").items() if n.startswith("OptimoveFeedJob")]
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["OPTIMOVE_FEED_BUCKET"] == "optimove-tenant-123"
    assert "FILES_BUCKET_NAME" in variables
    # Operators may run the job (dig feed run --stack), and the CLI finds it among the outputs.
    operator = next(p for n, p in of_type("AWS::IAM::ManagedPolicy").items() if n.startswith("OperatorPolicy"))
    assert any(s["Action"] == "lambda:InvokeFunction" for s in operator["Properties"]["PolicyDocument"]["Statement"])
    assert "OptimoveFeedJobFunctionName" in template["Outputs"]


def test_callback_urls_are_valid_for_the_configured_hours(resources: Resources) -> None:
    [optimove] = [
        r["Properties"] for n, r in resources("AWS::Lambda::Function").items() if n.startswith("OptimoveHandler")
    ]
    assert optimove["Environment"]["Variables"]["DIG_CALLBACK_VALIDITY_SECONDS"] == str(72 * 3600)


def test_payout_requests_reach_the_tipalti_connector_alone_and_it_reads_only_its_own_secret(
    resources: Resources,
) -> None:
    _, rule = one(resources, "AWS::Events::Rule", "TipaltiRule")
    assert rule["EventPattern"] == {"source": ["dig.api"], "detail-type": ["PAYOUT_REQUESTED"]}
    others = [
        n
        for n, r in resources("AWS::Events::Rule").items()
        if "PAYOUT_REQUESTED" in json.dumps(r["Properties"].get("EventPattern")) and not n.startswith("TipaltiRule")
    ]
    assert others == []
    statements = statements_of(resources, "TipaltiHandlerRole")
    secrets = [s["Resource"] for s in statements if "secretsmanager:GetSecretValue" in json.dumps(s["Action"])]
    assert any("secret:dig/tipalti-??????" in json.dumps(r) for r in secrets)
    assert not any("dig/tipalti/webhook" in json.dumps(r) for r in secrets)  # the API verifies webhooks


def test_the_tipalti_reconcile_job_reads_and_moves_payouts_and_writes_only_its_own_prefix(resources: Resources) -> None:
    statements = statements_of(resources, "TipaltiReconcileJobRole")
    dynamodb = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"} <= dynamodb
    assert "dynamodb:DeleteItem" not in dynamodb
    writes = [s for s in statements if "s3:PutObject" in json.dumps(s["Action"])]
    assert writes
    assert all("jobs/tipalti/reconcile/" in json.dumps(s["Resource"]) for s in writes)


def test_game_plays_reach_the_cataboom_connector_alone_which_reads_its_own_secret_and_never_queries(
    resources: Resources,
) -> None:
    # A member waits for the game link: its one event type is in the immediate lane, the only rule.
    assert not [n for n in resources("AWS::Events::Rule") if n.startswith("CataboomRule")]
    _, rule = one(resources, "AWS::Events::Rule", "CataboomImmediateRule")
    assert rule["EventPattern"] == {"source": ["dig.api"], "detail-type": ["GAME_PLAY_AWARDED"]}
    # Its webhooks are answered through the API's invoke, never routed on the bus.
    assert not [n for n in resources("AWS::Events::Rule") if n.startswith("CataboomWebhookRule")]
    for role in ("CataboomHandlerRole", "CataboomSyncHandlerRole"):
        statements = statements_of(resources, role)
        secrets = [s["Resource"] for s in statements if "secretsmanager:GetSecretValue" in json.dumps(s["Action"])]
        assert any("secret:dig/cataboom-??????" in json.dumps(r) for r in secrets), role
        assert "dynamodb:Query" not in actions(statements), role  # its plays are read by key
        assert "dynamodb:DeleteItem" not in actions(statements), role


def test_the_file_batch_step_keeps_member_contacts_from_extracts_as_long_as_events_keep_them(
    resources: Resources,
) -> None:
    [batch] = [r["Properties"] for n, r in resources("AWS::Lambda::Function").items() if n.startswith("FilesBatch")]
    assert batch["Environment"]["Variables"]["CONTACT_RETENTION_DAYS"] == "400"
    statements = statements_of(resources, "FilesBatch")
    assert {"dynamodb:BatchGetItem", "dynamodb:BatchWriteItem"} <= actions(statements)


def secrets_read_by(resources: Resources, role_prefix: str) -> str:
    statements = statements_of(resources, role_prefix)
    return json.dumps([s["Resource"] for s in statements if "secretsmanager:GetSecretValue" in json.dumps(s["Action"])])


def test_a_job_reads_the_connectors_secrets_when_it_calls_the_provider_and_its_own_alone(resources: Resources) -> None:
    # The unsubscribes poll and the payout reconciliation call their provider as their connector does.
    assert "secret:dig/optimove-??????" in secrets_read_by(resources, "OptimoveUnsubscribesJobRole")
    assert "secret:dig/tipalti-??????" in secrets_read_by(resources, "TipaltiReconcileJobRole")
    # The feed writes files and Snowflake tables: its Snowflake key pair, never Optimove's API key.
    feed = secrets_read_by(resources, "OptimoveFeedJobRole")
    assert "secret:dig/optimove/snowflake-??????" in feed
    assert "secret:dig/optimove-??????" not in feed
    for role in ("OptimoveHandlerRole", "OptimoveSyncHandlerRole", "OptimoveUnsubscribesJobRole"):
        assert "dig/optimove/snowflake" not in secrets_read_by(resources, role), role
    [job] = [r["Properties"] for n, r in resources("AWS::Lambda::Function").items() if n.startswith("OptimoveFeedJob")]
    assert job["Environment"]["Variables"]["OPTIMOVE_SNOWFLAKE_SECRET_ID"] == "dig/optimove/snowflake"


def test_api_gateway_traces_by_a_rule_of_the_stacks_own_without_the_default_reservoir(resources: Resources) -> None:
    from dig_contracts import functions

    rules = {
        r["Properties"]["SamplingRule"]["RuleName"]: r["Properties"]["SamplingRule"]
        for r in resources("AWS::XRay::SamplingRule").values()
    }
    rule = rules["dig-dev-api"]
    # X-Ray's default records the first request each second: at a program's pace, nearly every one.
    assert (rule["ReservoirSize"], rule["FixedRate"]) == (0, functions.API_TRACE_FIXED_RATE) == (0, 0.05)
    assert rule["ServiceName"] == "dig-dev/dev"
    # After the routes never traced (their URLs may hold tokens), before the account's Default (10,000).
    never = [r["Priority"] for name, r in rules.items() if name != "dig-dev-api"]
    assert max(never) < rule["Priority"] < 10_000
