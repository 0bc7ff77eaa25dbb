"""How the local stack invokes the real handlers."""

from __future__ import annotations

from typing import Any

import pytest
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from dig_local.stack import EMF_BYTES, EMITTED_METRICS, _discarding_metrics


def test_metrics_are_discarded_so_nothing_reaches_the_terminal_however_many_invocations(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    metrics = Metrics(namespace="DIG", service="local-test")

    @metrics.log_metrics
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        metrics.add_metric(name="EventsAccepted", unit=MetricUnit.Count, value=1)
        return {"ok": event["n"]}

    invoke = _discarding_metrics(handler, "local_test.handler")
    Metrics().clear_metrics()  # the metric set is shared: nothing another test left in it
    EMF_BYTES.reset()
    answers = [invoke({"n": n}, None) for n in range(150)]

    assert answers[-1] == {"ok": 149}
    assert capsys.readouterr().out == ""
    assert Metrics(namespace="DIG").metric_set == {}
    # What `dig cost` prices as custom metrics: the names a handler emitted, kept.
    assert ("local_test.handler", "EventsAccepted") in EMITTED_METRICS
    # And as log ingestion: each invocation's metric document, as Powertools would have printed it deployed.
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED")
    printing = Metrics(namespace="DIG", service="local_test")
    printing.add_metric(name="EventsAccepted", unit=MetricUnit.Count, value=1)
    printing.flush_metrics()
    printed = capsys.readouterr().out
    assert EMF_BYTES.reset() == 150 * len(printed.encode())


def test_an_invocation_that_emits_no_metric_adds_no_metric_document() -> None:
    EMF_BYTES.reset()
    _discarding_metrics(lambda event, context: None, "local_test.quiet")({}, None)
    assert EMF_BYTES.reset() == 0


def test_the_local_stacks_sqs_speedups_keep_visibility_and_retention_as_they_were(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import time

    import boto3
    from moto import mock_aws

    from dig_local import moto_speedups

    moto_speedups.apply()
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="q", Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="first")

        [received] = sqs.receive_message(QueueUrl=url, VisibilityTimeout=30)["Messages"]
        assert received["Body"] == "first"
        assert "Messages" not in sqs.receive_message(QueueUrl=url)  # hidden for its visibility timeout

        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=received["ReceiptHandle"], VisibilityTimeout=0)
        again = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0, AttributeNames=["ApproximateReceiveCount"])
        assert [(m["Body"], m["Attributes"]["ApproximateReceiveCount"]) for m in again["Messages"]] == [("first", "2")]

        later = time.time() + 61
        monkeypatch.setattr(time, "time", lambda: later)
        assert "Messages" not in sqs.receive_message(QueueUrl=url)  # past its retention period


def test_the_local_stacks_eventbridge_speedup_delivers_the_same_event_to_the_queue() -> None:
    import json

    import boto3
    from moto import mock_aws

    from dig_local import moto_speedups

    moto_speedups.apply()
    with mock_aws():
        events, sqs = boto3.client("events", region_name="us-east-1"), boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="q")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.create_event_bus(Name="bus")
        events.put_rule(Name="rule", EventBusName="bus", EventPattern=json.dumps({"source": ["dig.api"]}))
        events.put_targets(Rule="rule", EventBusName="bus", Targets=[{"Id": "q", "Arn": arn}])
        for n in (1, 2):
            entry = {"EventBusName": "bus", "Source": "dig.api", "DetailType": "T"}
            events.put_events(Entries=[{**entry, "Detail": json.dumps({"n": n, "nested": [1, {"none": None}]})}])

        bodies = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]]
        assert sorted(b["detail"]["n"] for b in bodies) == [1, 2]  # each event its own, not a cached one
        assert all(b["detail"]["nested"] == [1, {"none": None}] for b in bodies)
        assert {(b["source"], b["detail-type"], b["region"]) for b in bodies} == {("dig.api", "T", "us-east-1")}


def test_the_local_stacks_send_and_condition_speedups_answer_as_moto_does() -> None:
    import boto3
    from botocore.exceptions import ClientError
    from moto import mock_aws

    from dig_local import moto_speedups
    from tests.aws import AUDIT, create_tables

    moto_speedups.apply()
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="q")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="one")
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "two"}])
        counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        assert counts["Attributes"] == {"ApproximateNumberOfMessages": "2"}  # counted when asked, not when sending

        dynamodb = create_tables()
        condition = {
            "ConditionExpression": "attribute_not_exists(pk) OR #s = :s",
            "ExpressionAttributeNames": {"#s": "s"},
        }

        def put(value: str, expected: str) -> None:
            dynamodb.put_item(
                TableName=AUDIT,
                Item={"pk": {"S": "p"}, "sk": {"S": "k"}, "s": {"S": value}},
                ExpressionAttributeValues={":s": {"S": expected}},
                **condition,
            )

        put("a", "-")  # new item
        put("b", "a")  # the same expression text, other values: evaluated with these
        with pytest.raises(ClientError, match="ConditionalCheckFailed"):
            put("c", "a")


def test_the_local_stacks_delete_and_query_speedups_answer_as_moto_does() -> None:
    import boto3
    from moto import mock_aws

    from dig_local import moto_speedups
    from tests.aws import AUDIT, create_tables

    moto_speedups.apply()
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="q")["QueueUrl"]
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(5)])
        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=3, VisibilityTimeout=0)["Messages"]
        entries = [{"Id": m["Body"], "ReceiptHandle": m["ReceiptHandle"]} for m in received]
        answer = sqs.delete_message_batch(QueueUrl=url, Entries=[*entries, {"Id": "bad", "ReceiptHandle": "nope"}])
        assert sorted(s["Id"] for s in answer["Successful"]) == sorted(m["Body"] for m in received)
        assert [(f["Id"], f["Code"]) for f in answer["Failed"]] == [("bad", "ReceiptHandleIsInvalid")]
        again = sqs.delete_message_batch(QueueUrl=url, Entries=entries[:1])  # deleted already: still a success
        assert [s["Id"] for s in again["Successful"]] == [entries[0]["Id"]]
        left = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        assert len(left) == 2
        assert {m["Body"] for m in left}.isdisjoint(m["Body"] for m in received)

        dynamodb = create_tables()
        for pk in ("MSG#a", "MSG#b"):
            for sk in ("MESSAGE", "DELIVERY#x", "DELIVERY#y"):
                item = {
                    "pk": {"S": pk},
                    "sk": {"S": sk},
                    "gsiMemberPk": {"S": "MEMBER#1"},
                    "gsiMemberSk": {"S": pk + sk},
                }
                dynamodb.put_item(TableName=AUDIT, Item=item)

        def query(**extra: Any) -> list[str]:
            answer = dynamodb.query(TableName=AUDIT, **extra)
            return [i["pk"]["S"] + " " + i["sk"]["S"] for i in answer["Items"]]

        by_key = {"KeyConditionExpression": "pk = :pk", "ExpressionAttributeValues": {":pk": {"S": "MSG#b"}}}
        assert query(**by_key) == ["MSG#b DELIVERY#x", "MSG#b DELIVERY#y", "MSG#b MESSAGE"]
        assert query(**by_key, ScanIndexForward=False, Limit=2) == ["MSG#b MESSAGE", "MSG#b DELIVERY#y"]
        other = {"pk": {"S": "MSG#c"}, "sk": {"S": "MESSAGE"}, "gsiMemberPk": {"S": "MEMBER#2"}}
        dynamodb.put_item(TableName=AUDIT, Item={**other, "gsiMemberSk": {"S": "MSG#cMESSAGE"}})
        by_index = {
            "IndexName": "byMember",
            "KeyConditionExpression": "gsiMemberPk = :m",
            "ExpressionAttributeValues": {":m": {"S": "MEMBER#1"}},
        }
        # Every partition of the table, the index's own order, that member's items only.
        expected = sorted(f"{pk} {sk}" for pk in ("MSG#a", "MSG#b") for sk in ("DELIVERY#x", "DELIVERY#y", "MESSAGE"))
        assert query(**by_index) == expected
        assert query(**by_index, ScanIndexForward=False, Limit=2) == expected[::-1][:2]
        member_2 = {**by_index, "ExpressionAttributeValues": {":m": {"S": "MEMBER#2"}}}
        assert query(**member_2) == ["MSG#c MESSAGE"]


def test_the_local_s3_stores_a_put_whatever_its_content_type() -> None:
    """moto's Flask app parses a form content type and would store 0 bytes; S3 stores the bytes sent."""
    from dig_local.moto_process import raw_uploads

    seen: list[tuple[str, str]] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append((environ["REQUEST_METHOD"], environ.get("CONTENT_TYPE", "")))
        return []

    wrapped = raw_uploads(app)
    for method, content_type in [
        ("PUT", "application/x-www-form-urlencoded"),
        ("PUT", "multipart/form-data; boundary=x"),
        ("PUT", "text/csv"),
        ("POST", "application/x-www-form-urlencoded"),
    ]:
        wrapped({"REQUEST_METHOD": method, "CONTENT_TYPE": content_type}, None)
    assert seen == [
        ("PUT", "application/octet-stream"),
        ("PUT", "application/octet-stream"),
        ("PUT", "text/csv"),
        ("POST", "application/x-www-form-urlencoded"),  # S3's browser-form uploads are forms
    ]


@pytest.mark.parametrize("thread_class", ["dig_local.poller:QueuePoller", "dig_local.file_driver:FileDriver"])
def test_the_local_drivers_threads_shadow_nothing_of_threading_thread(thread_class: str) -> None:
    """A method named like one of Thread's own (``_delete``, which Thread calls as it ends) made every
    poller print a TypeError traceback when `dig local` stopped."""
    import importlib
    import threading

    module, _, name = thread_class.partition(":")
    cls = getattr(importlib.import_module(module), name)
    overridden = {n for n in vars(cls) if n in dir(threading.Thread)} - {"__init__", "run", "__doc__", "__module__"}
    assert overridden == set()


def test_the_local_stack_routes_each_event_type_to_its_lanes_queue_as_the_deployed_rules_do() -> None:
    import json

    import boto3
    from moto import mock_aws

    from connectors.optimove.manifest import MANIFEST
    from dig_contracts.bus import CALLBACK_SOURCE, callback_detail_type
    from dig_local import resources

    with mock_aws():
        session = boto3.session.Session(region_name=resources.LOCAL_REGION)
        made = resources.create(session, [MANIFEST], stage="lanes")
        optimove = made.connectors["optimove"]
        assert optimove.immediate_queue_url is not None
        events, sqs = session.client("events"), session.client("sqs")
        for event_type in ("MEMBER_REGISTRATION", "MEMBER_PROFILE_UPDATE", "REDEMPTION", "OPT_IN_EMAIL"):
            events.put_events(
                Entries=[{"EventBusName": made.bus_name, "Source": "dig.api", "DetailType": event_type, "Detail": "{}"}]
            )

        def types(url: str) -> list[str]:
            answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
            return sorted(json.loads(m["Body"])["detail-type"] for m in answer.get("Messages", []))

        # Optimove's result callbacks: to the immediate lane, as the deployed callback rule routes them.
        events.put_events(
            Entries=[
                {
                    "EventBusName": made.bus_name,
                    "Source": CALLBACK_SOURCE,
                    "DetailType": callback_detail_type("optimove"),
                    "Detail": "{}",
                }
            ]
        )
        assert types(optimove.immediate_queue_url) == ["CALLBACK.optimove", "MEMBER_REGISTRATION", "REDEMPTION"]
        assert types(optimove.queue_url) == ["MEMBER_PROFILE_UPDATE", "OPT_IN_EMAIL"]
        # Both lanes give up into the connector's one dead-letter queue.
        policies = [
            json.loads(
                sqs.get_queue_attributes(QueueUrl=u, AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"]
            )
            for u in (optimove.queue_url, optimove.immediate_queue_url)
        ]
        assert policies[0] == policies[1]
        assert made.describe()["connectors"]["optimove"]["immediateQueueUrl"] == optimove.immediate_queue_url


class ScriptedSqs:
    """receive_message answers from a script (then nothing); every request kept."""

    def __init__(self, answers: list[int]) -> None:
        self.answers = list(answers)
        self.requests: list[dict[str, object]] = []
        self.sent = 0

    def receive_message(self, **request: object) -> dict[str, object]:
        self.requests.append(request)
        count = min(self.answers.pop(0) if self.answers else 0, int(request["MaxNumberOfMessages"]))  # type: ignore[call-overload]
        messages = [{"MessageId": f"m{self.sent + i}", "ReceiptHandle": "r", "Body": "{}"} for i in range(count)]
        self.sent += count
        return {"Messages": messages} if messages else {}


def poller_for(sqs: ScriptedSqs, lane_name: str, window: float | None = None) -> object:
    from connectors.optimove.manifest import MANIFEST
    from dig_local.poller import QueuePoller

    lane = next(lane for lane in MANIFEST.lanes if lane.name == lane_name)
    return QueuePoller(
        sqs=sqs,
        queue_url="q",
        queue_arn="arn",
        handler=lambda event, context: {},
        manifest=MANIFEST,
        lane=lane,
        region="us-east-1",
        batching_window_seconds=window,
    )


def test_the_immediate_lanes_poller_long_polls_and_takes_what_is_there_without_a_window() -> None:
    sqs = ScriptedSqs([0, 3])
    poller = poller_for(sqs, "immediate")
    assert poller._receive_batch() == []  # type: ignore[attr-defined]
    batch = poller._receive_batch()  # type: ignore[attr-defined]
    assert [m["MessageId"] for m in batch] == ["m0", "m1", "m2"]
    # An idle queue is asked once a second, and an arrival answers the long poll at once.
    assert sqs.requests[0]["WaitTimeSeconds"] == 1
    assert {r["MaxNumberOfMessages"] for r in sqs.requests} == {10}
    # No window: the batch goes with what the receive brought, without another look.
    assert len(sqs.requests) == 2
    assert sqs.requests[1]["WaitTimeSeconds"] == 1


@pytest.mark.parametrize("window", [30, 0.5])
def test_the_coalescing_lanes_poller_takes_a_backlog_at_once_until_the_batch_is_full(window: float) -> None:
    sqs = ScriptedSqs([10] * 200)
    poller = poller_for(sqs, "coalescing", window=window)
    batch = poller._receive_batch()  # type: ignore[attr-defined]
    assert len(batch) == 1000 == len({m["MessageId"] for m in batch})
    # While messages are there, no receive waits: a window under a second must not cut a backlog short.
    assert len(sqs.requests) == 100
    assert [r["WaitTimeSeconds"] for r in sqs.requests[1:]] == [0] * 99


def test_the_coalescing_lanes_poller_waits_for_more_within_the_window_then_invokes() -> None:
    sqs = ScriptedSqs([3, 0, 4])  # 3 now, nothing at once, 4 during the wait, then nothing
    poller = poller_for(sqs, "coalescing", window=2)
    batch = poller._receive_batch()  # type: ignore[attr-defined]
    assert len(batch) == 7
    assert [r["WaitTimeSeconds"] for r in sqs.requests[:3]] == [1, 0, 1]


def test_a_connector_reads_its_own_coalescing_window_before_the_shared_one() -> None:
    from dig_connector_kit.settings import COALESCING_WINDOW_SECONDS, ConnectorSettings, connector_variable

    environ = {
        "AUDIT_TABLE_NAME": "audit",
        "CONFIG_TABLE_NAME": "config",
        COALESCING_WINDOW_SECONDS: "20",
        connector_variable(COALESCING_WINDOW_SECONDS, "optimove"): "0.5",
    }
    assert ConnectorSettings.from_environment(environ, connector="optimove").coalescing_window_seconds == 0.5
    assert ConnectorSettings.from_environment(environ, connector="marketo").coalescing_window_seconds == 20
    del environ[COALESCING_WINDOW_SECONDS]
    assert ConnectorSettings.from_environment(environ, connector="marketo").coalescing_window_seconds is None


def test_a_long_poll_waits_while_every_message_is_in_flight_and_wakes_on_a_send() -> None:
    import threading
    import time

    import boto3
    from moto import mock_aws

    from dig_local import moto_speedups

    moto_speedups.apply()
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="q")["QueueUrl"]
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"old-{i}"} for i in range(10)])
        assert len(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60)["Messages"]) == 10
        started = time.monotonic()
        assert "Messages" not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)  # all in flight: waits it out
        assert time.monotonic() - started >= 0.9

        sender = threading.Timer(0.2, lambda: sqs.send_message(QueueUrl=url, MessageBody="new"))
        sender.start()
        woke = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5)
        sender.join()
        assert [m["Body"] for m in woke["Messages"]] == ["new"]
        sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)
        assert "Messages" not in sqs.receive_message(QueueUrl=url)  # delayed: listed as not yet visible


def test_dig_cost_gathers_the_coalescing_lanes_batches_as_aws_gathers_them_at_the_least() -> None:
    from connectors.optimove.manifest import MANIFEST
    from dig_local.stack import local_pollers

    lanes = {lane.name: lane for lane in MANIFEST.lanes}
    immediate, coalescing = lanes["immediate"], lanes["coalescing"]
    assert local_pollers(coalescing) == 1  # dig local and the tests: one window gathers all that comes
    assert local_pollers(coalescing, as_aws=True) == coalescing.max_concurrency == 2  # dig cost
    assert local_pollers(immediate) == local_pollers(immediate, as_aws=True) == 2
