"""The return path from Optimove: OptiMail's unsubscribes, polled, each one a MEMBER_CONSENT_CHANGED
(email, opted out) to ES Loyalty (dig_contracts.inbound), through the ``esloyalty`` connector.

Optimove has no webhook for unsubscribes (../shared/reference/return-path.md): the ``unsubscribes`` job
reads ``GetUnsubscribers`` for the brand, from the day it last read to today (UTC, inclusive), starting
``overlapDays`` earlier, page by page. Each row's inbound event id comes from the brand, the address and
its unsubscribe time, so reading a day again sends nothing new; the cursor moves on only once every
event of the run is on the bus. The address is resolved to the member through the member contact store
(the email DIG last saw in the member's events); an address DIG knows no member for is counted and
reported, never guessed, and no address is ever logged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache

from connectors.optimove import client as api
from connectors.optimove.config import OptimoveConfig
from dig_connector_kit.http import Transport
from dig_connector_kit.inbound import Emitter
from dig_connector_kit.model import Deadline
from dig_connector_kit.ports import ContactStore, PollCursors
from dig_contracts.inbound import (
    Channel,
    Consent,
    ConsentReason,
    MemberConsentChanged,
    MemberConsentChangedData,
    Origin,
    inbound_event_id,
)

CONNECTOR = "optimove"
JOB = "unsubscribes"


class PollFailed(RuntimeError):
    """Optimove did not answer (or answered what cannot be read): the cursor stays, the next run reads again."""


@dataclass
class PollReport:
    configured: bool = True
    start: str | None = None
    end: str | None = None
    read: int = 0
    events: int = 0  # new inbound events, on their way to ES Loyalty
    duplicates: int = 0  # read before (the overlap): nothing sent
    unmatched: int = 0
    pages: int = 0
    notes: list[str] = field(default_factory=list)


def consent_event(brand_id: int, row: api.Unsubscriber, member: str) -> MemberConsentChanged:
    occurred = datetime.strptime(row.unsubscribed_time, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    return MemberConsentChanged(
        eventId=inbound_event_id(
            CONNECTOR, "unsubscribe", str(brand_id), row.email.strip().lower(), row.unsubscribed_time
        ),
        occurredAt=occurred,
        memberId=member,
        origin=Origin(
            connector=CONNECTOR, source=JOB, providerReference=f"OptiMail brand {brand_id}, {row.unsubscribed_time} UTC"
        ),
        data=MemberConsentChangedData(
            channel=Channel.EMAIL, consent=Consent.OPTED_OUT, reason=ConsentReason.UNSUBSCRIBE
        ),
    )


class UnsubscribePoll:
    def __init__(
        self,
        config: Callable[[], OptimoveConfig],
        transport: Transport,
        api_base: str,
        contacts: ContactStore,
        cursors: PollCursors,
        emitter: Emitter,
        *,
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
    ) -> None:
        self._config = config
        self._transport = transport
        self._api_base = api_base
        self._contacts = contacts
        self._cursors = cursors
        self._emitter = emitter
        self._today = today

    def run(self, deadline: Deadline) -> PollReport:
        config = self._config()
        settings = config.unsubscribes
        if settings is None:
            return PollReport(configured=False)
        today = self._today()
        last = self._cursors.read(CONNECTOR, JOB)
        start = (
            date.fromisoformat(last) - timedelta(days=settings.overlapDays)
            if last
            else today - timedelta(days=settings.firstRunDays)
        )
        report = PollReport(start=start.isoformat(), end=today.isoformat())
        rows: list[api.Unsubscriber] = []
        while True:
            request = api.get_unsubscribers(
                self._api_base,
                settings.brandId,
                report.start or "",
                report.end or "",
                len(rows),
                config.rateLimits.customerApi,
            )
            result = self._transport.send(request, deadline)
            if not result.ok:
                raise PollFailed(f"{api.UNSUBSCRIBERS_CALL}: {result.status} {result.error or ''}".strip())
            try:
                page = api.unsubscribers(result.body)
            except ValueError as error:
                raise PollFailed(str(error)) from None
            rows.extend(page)
            report.pages += 1
            if len(page) < api.UNSUBSCRIBERS_PAGE_ROWS:
                break
        report.read = len(rows)
        members = self._contacts.members_by_email(row.email for row in rows)
        events = []
        for row in rows:
            member = members.get(row.email.strip().lower())
            if member is None:
                report.unmatched += 1
            else:
                events.append(consent_event(settings.brandId, row, member))
        emitted = self._emitter.emit(events)  # raises when the bus did not take them all: the cursor stays
        report.events, report.duplicates = len(emitted.emitted), len(emitted.duplicates)
        if report.unmatched:
            report.notes.append(f"{report.unmatched} unsubscribed addresses match no member DIG knows")
        self._cursors.advance(CONNECTOR, JOB, today.isoformat())
        return report


# --- the job's Lambda entry point (manifest: UNSUBSCRIBES_JOB) -------------------------------------


def lambda_handler(event: dict[str, object], context: object) -> dict[str, object]:
    """Every hour from its schedule (input ``{}``), or on an operator's request (the same). It reports
    the connector's return-path metrics (InboundEventsEmitted, InboundUnmatched); a failed poll raises
    (the function's Errors alarm) and the next run reads the same days again."""
    from aws_lambda_powertools import Logger, Metrics
    from aws_lambda_powertools.metrics import MetricUnit

    from dig_contracts.metrics import NAMESPACE, ConnectorMetric, connector_service

    service = connector_service(CONNECTOR)
    metrics = Metrics(namespace=NAMESPACE, service=service)
    report = _poll().run(Deadline.from_context(context))
    counts = {ConnectorMetric.INBOUND_EMITTED: report.events, ConnectorMetric.INBOUND_UNMATCHED: report.unmatched}
    for name, value in counts.items():
        if value:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    metrics.flush_metrics()
    Logger(service=service).info(
        "unsubscribes polled", extra={k: v for k, v in report.__dict__.items() if k != "notes"}
    )
    return dict(report.__dict__)


@cache
def _poll() -> UnsubscribePoll:
    from connectors.optimove.client import Credentials, authorize, read_body
    from connectors.optimove.manifest import API_BASE_URL, MANIFEST, SECRET_ID
    from dig_connector_kit.lambda_entry import Kit

    kit = Kit(MANIFEST)

    def credentials() -> Credentials:
        return Credentials(api_key=kit.secret(SECRET_ID)["apiKey"])

    transport = kit.transport(authorize(credentials), read_body=read_body)
    return UnsubscribePoll(
        kit.config, transport, kit.setting(API_BASE_URL), kit.contacts, kit.poll_cursors, kit.inbound
    )
