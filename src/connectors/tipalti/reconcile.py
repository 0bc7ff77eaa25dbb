"""The reconciliation poll and the daily report. Every hour, each payout DIG submitted and not yet final is looked up at
Tipalti by its refCode, and a status the webhooks never brought (a notification lost, the webhook not
set up yet) goes to ES Loyalty as PAYOUT_STATUS_CHANGED: the same event id as the webhook's for the same
status, so ES Loyalty gets each status once whichever way it came.

Reading DIG's own open payouts (payouts.PayoutBook.open_payouts), not a "changed since" list of
Tipalti's, keeps it to documented calls (a payment by refCode) and to what DIG owes an answer for.

Each run also writes yesterday's reconciliation report (UTC), and any day's on request (``{"date":
"yyyy-mm-dd"}``, what `dig payouts reconcile --date` sends): per program, the payouts requested,
submitted, paid, failed, still open and not sent, the amounts paid per currency, and what is unmatched
on either side: a payout DIG submitted that Tipalti does not know, a payment Tipalti holds under a refCode
of DIG's shape that DIG never sent. In the files bucket, ``jobs/tipalti/reconcile/reports/<day>.json``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

from connectors.tipalti import client as api
from connectors.tipalti.config import TipaltiConfig
from connectors.tipalti.delivery import STATUSES, status_event
from connectors.tipalti.payouts import PayoutBook
from dig_connector_kit.http import Transport
from dig_connector_kit.inbound import Emitter
from dig_connector_kit.model import Deadline
from dig_contracts.inbound import FINAL_PAYOUT_STATUSES

CONNECTOR = "tipalti"
JOB = "reconcile"
REPORTS_PREFIX = "jobs/tipalti/reconcile/reports/"
# What the report counts each latest status as.
PAID = frozenset({"PAID", "CLEARED"})
FAILED = frozenset({"FAILED", "REJECTED", "DEFERRED", "CANCELLED"})
AT_TIPALTI = frozenset({"SUBMITTED", "PAID", "CLEARED", "DEFERRED", "CANCELLED"})  # a refused line never got there


@dataclass
class ReconcileReport:
    open: int = 0
    looked_up: int = 0
    changed: int = 0
    emitted: int = 0
    missing: int = 0  # submitted by DIG, unknown to Tipalti: an operator's question
    notes: list[str] = field(default_factory=list)


class Reconciliation:
    def __init__(
        self,
        config: Callable[[], TipaltiConfig],
        transport: Transport,
        base_url: str,
        payouts: PayoutBook,
        emitter: Callable[[], Emitter],
        clock: Callable[[], float],
    ) -> None:
        self._config, self._transport, self._base = config, transport, base_url.rstrip("/")
        self._payouts, self._emitter, self._clock = payouts, emitter, clock

    def now(self) -> float:
        return self._clock()

    def run(self, deadline: Deadline) -> ReconcileReport:
        config = self._config()
        report = ReconcileReport()
        events = []
        open_payouts = self._payouts.open_payouts()
        report.open = len(open_payouts)
        for payout in open_payouts:
            if not deadline.allows(5):
                report.notes.append("stopped at the deadline: the next run goes on")
                break
            result = self._transport.send(api.find_payment(self._base, payout.ref, config.limits), deadline)
            report.looked_up += 1
            if not result.ok:
                report.notes.append(f"{payout.payout_id}: {api.FIND_PAYMENT} {result.status}")
                continue
            found = api.first_item(result.body)
            if found is None:
                report.missing += 1
                report.notes.append(f"{payout.payout_id}: submitted by DIG, unknown to Tipalti (refCode {payout.ref})")
                continue
            provider_status = str(found.get("status") or "").upper()
            status = STATUSES.get(provider_status)
            if status is None or status.value == payout.status:
                continue
            report.changed += 1
            final = status in FINAL_PAYOUT_STATUSES
            self._payouts.set_status(payout.ref, status.value, final)
            events.append(
                status_event(
                    payout.payout_id,
                    payout.member_id,
                    payout.program_id,
                    status,
                    None,
                    provider_status,
                    datetime.fromtimestamp(self._clock(), UTC),
                    source=JOB,
                )
            )
        if events:
            report.emitted = len(self._emitter().emit(events).emitted)
        return report

    def daily_report(self, day: str, deadline: Deadline) -> dict[str, Any]:
        config = self._config()
        payouts = self._payouts.requested_on(day)
        # One read of Tipalti's payments (200 a page) answers both sides: which of DIG's it holds, and
        # which of DIG's shape DIG never sent.
        at_tipalti = self._dig_shaped_payments(config, deadline)
        programs: dict[str, dict[str, Any]] = {}
        missing_at_tipalti: list[str] = []
        for payout in payouts:
            counts = programs.setdefault(
                payout.program_id or "default",
                {"requested": 0, "submitted": 0, "paid": 0, "failed": 0, "open": 0, "notSent": 0, "paidAmounts": {}},
            )
            counts["requested"] += 1
            if payout.status in AT_TIPALTI:
                counts["submitted"] += 1
                if payout.ref not in at_tipalti:
                    missing_at_tipalti.append(payout.payout_id)
            if payout.status in PAID:
                counts["paid"] += 1
                paid = counts["paidAmounts"]
                paid[payout.currency] = str(Decimal(paid.get(payout.currency, "0")) + Decimal(payout.amount or "0"))
            elif payout.status in FAILED:
                counts["failed"] += 1
            elif payout.status == "SUBMITTED":
                counts["open"] += 1
            else:
                counts["notSent"] += 1
        never_sent = sorted(ref for ref in at_tipalti if self._payouts.get(ref) is None)
        return {
            "connector": CONNECTOR,
            "date": day,
            "generatedAt": datetime.fromtimestamp(self._clock(), UTC).isoformat(),
            "programs": programs,
            "unmatched": {"dig": sorted(missing_at_tipalti), "provider": never_sent},
        }

    def _dig_shaped_payments(self, config: TipaltiConfig, deadline: Deadline) -> set[str]:
        """The refCodes of DIG's shape among Tipalti's payments."""
        found: set[str] = set()
        cursor = None
        while deadline.allows(5):
            result = self._transport.send(api.list_payments(self._base, cursor, config.limits), deadline)
            if not result.ok:
                failure = f"{api.LIST_PAYMENTS}: {result.status} {result.error or ''}"
                raise RuntimeError(f"{failure}: the report is not written")
            for item in (result.body or {}).get("items", []):
                ref = str(item.get("refCode") or "")
                if api.is_dig_payment_ref(ref):
                    found.add(ref)
            cursor = api.next_cursor(result.body)
            if cursor is None:
                return found
        raise RuntimeError("the deadline came before Tipalti's payments were read: the report is not written")


# --- the job's Lambda entry point (manifest: RECONCILE_JOB) -------------------------------------------


def lambda_handler(event: dict[str, object], context: object) -> dict[str, object]:
    """Every hour from its schedule (input ``{}``): the open payouts, then yesterday's report; on an
    operator's request with ``{"date": "yyyy-mm-dd"}``: that day's report only."""
    import json
    import os

    from aws_lambda_powertools import Logger

    from dig_contracts.environment import FILES_BUCKET_NAME
    from dig_contracts.metrics import connector_service

    logger = Logger(service=connector_service(CONNECTOR))
    deadline = Deadline.from_context(context)
    job = _job()
    answer: dict[str, object] = {}
    day = str(event.get("date") or "")
    if not day:
        run = job.run(deadline)
        logger.info("payouts reconciled", extra={k: v for k, v in run.__dict__.items() if k != "notes"})
        answer |= run.__dict__
        day = (datetime.fromtimestamp(job.now(), UTC).date() - timedelta(days=1)).isoformat()
    date.fromisoformat(day)  # a bad date is the caller's error, raised before anything is read
    report = job.daily_report(day, deadline)
    key = f"{REPORTS_PREFIX}{day}.json"
    _s3().put_object(Bucket=os.environ[FILES_BUCKET_NAME], Key=key, Body=json.dumps(report, indent=2).encode())
    logger.info("payout report written", extra={"day": day, "key": key})
    return answer | {"report": report, "reportKey": key}


@cache
def _kit() -> Any:
    from connectors.tipalti.manifest import MANIFEST
    from dig_connector_kit.lambda_entry import Kit

    return Kit(MANIFEST)


def _s3() -> Any:
    return _kit().session.client("s3")


@cache
def _job() -> Reconciliation:
    import time

    from connectors.tipalti.client import transport_for
    from connectors.tipalti.manifest import API_BASE_URL
    from connectors.tipalti.payouts import DynamoPayoutBook

    kit = _kit()
    return Reconciliation(
        kit.config,
        transport_for(kit),
        kit.setting(API_BASE_URL),
        DynamoPayoutBook(kit.table),
        lambda: kit.inbound,
        time.time,
    )
