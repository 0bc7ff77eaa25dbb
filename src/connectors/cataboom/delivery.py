"""The CataBoom delivery engine and its two answered webhooks.

GAME_PLAY_AWARDED: for each of the award's plays, a unique play link from CataBoom's Request Unique URL
API (``AccountID`` = the member's opaque reference, client.member_ref), each recorded (plays.PlayBook) so
the same award sent twice issues no new links, and each handed back to ES Loyalty as an inbound
GAME_PLAY_LINK_ISSUED (its id from the award and the play number: told twice, one event). A campaign
with ``signedLaunch`` adds a launch token to each link (launch.issue), which the ``launch`` webhook
accepts once.

The ``writeback`` webhook (CataBoom's prize fulfillment) is answered in CataBoom's codes: the token
against the campaign's, in constant time (1000), the campaign (1100), the account (1200), the win level
(1300); a win is one POINTS_AWARD_REQUESTED with reference ``cataboom:{campaign}:{play}`` and the
configured points; the same writeback again is answered ``0`` and is the same event, so one award.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from connectors.cataboom import client as api
from connectors.cataboom import launch
from connectors.cataboom.config import CataBoomConfig
from connectors.cataboom.plays import Account, IssuedPlay, PlayBook
from dig_connector_kit.http import Transport
from dig_connector_kit.inbound import Emitter
from dig_connector_kit.model import Deadline, InboundMessage, Outcome, Result, WebhookReading, WebhookReply
from dig_connector_kit.ports import Counters
from dig_contracts.events import GamePlayAwardedEvent
from dig_contracts.inbound import (
    GamePlayLinkIssued,
    GamePlayLinkIssuedData,
    InboundFields,
    Origin,
    PointsAwardRequested,
    PointsAwardRequestedData,
    WebhookAnswer,
    WebhookCall,
    inbound_event_id,
)

NAME = "cataboom"
DAY_SECONDS = 86_400
LOSS = "0"
REFUSED_COUNT = "writebacksRefused"


class CataBoomConnector:
    name = NAME

    def __init__(
        self,
        config: Callable[[], CataBoomConfig],
        secret: Callable[[], Mapping[str, Any]],
        transport: Transport,
        base_url: str,
        *,
        plays: PlayBook,
        counters: Counters,
        emitter: Callable[[], Emitter],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._secret = secret
        self._transport = transport
        self._base = base_url.rstrip("/")
        self._plays = plays
        self._counters = counters
        self._emitter = emitter
        self._clock = clock

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def _count(self, **counts: int) -> None:
        self._counters.add(NAME, counts, self._now())

    # --- delivery: play links ----------------------------------------------------------------------

    def deliver(self, messages: Sequence[InboundMessage], deadline: Deadline) -> Mapping[str, Outcome]:
        try:
            config, secret = self._config(), self._secret()
        except Exception as error:  # a bad or missing configuration or secret: nothing can be issued yet
            return {m.message_id: Outcome(Result.RETRY, error=f"configuration unavailable: {error}") for m in messages}
        outcomes: dict[str, Outcome] = {}
        links: list[InboundFields] = []
        for message in messages:
            event = message.loyalty_event
            if not isinstance(event, GamePlayAwardedEvent):
                outcomes[message.message_id] = Outcome(Result.SKIPPED, notes=[f"{message.event_type} is not a play"])
                continue
            outcome = Outcome(Result.DELIVERED)
            outcomes[message.message_id] = outcome
            links.extend(self._award(event, config, secret, deadline, outcome))
        if links:
            self._emitter().emit(links)
        return outcomes

    def _award(
        self,
        event: GamePlayAwardedEvent,
        config: CataBoomConfig,
        secret: Mapping[str, Any],
        deadline: Deadline,
        outcome: Outcome,
    ) -> list[InboundFields]:
        award = event.data
        campaign = config.campaigns.get(award.campaign)
        credentials = api.campaign_credentials(secret, award.campaign)
        if campaign is None or credentials is None:
            where = "the configuration" if campaign is None else "the connector's secret"
            outcome.result, outcome.error = Result.FAILED, f"campaign {award.campaign} is not in {where}"
            return []
        now = self._clock()
        if award.expiresAt is not None and award.expiresAt.timestamp() <= now:
            outcome.result = Result.SKIPPED
            outcome.notes.append(f"the award expired at {award.expiresAt.isoformat()}: no links issued")
            return []
        keep_until = int(max(now, award.expiresAt.timestamp() if award.expiresAt else now)) + (
            config.accountRetentionDays * DAY_SECONDS
        )
        account = api.member_ref(str(secret["memberRefKey"]), event.programId, event.memberId)
        self._plays.remember(Account(account, event.memberId, event.programId), keep_until)
        issued = self._plays.issued(award.awardId, award.plays)
        fresh = 0
        for number in range(1, award.plays + 1):
            if number in issued:
                continue
            request = api.request_play_url(
                self._base, award.campaign, credentials, account, award.awardId, number, config.limits
            )
            result = self._transport.send(request, deadline)
            outcome.attempts.extend(result.attempts)
            if not result.ok:
                # 401/403: the campaign's credentials are wrong (a fix and a replay); 5xx, 429, no answer: again.
                outcome.result = Result.RETRY if result.retryable else Result.FAILED
                outcome.error = (
                    f"{api.REQUEST_PLAY_URL} for play {number}: {result.status} {result.error or ''}".strip()
                )
                break
            try:
                link = api.read_play_link(result.text, award.campaign)
            except ValueError as error:
                outcome.result, outcome.error = Result.RETRY, f"{api.REQUEST_PLAY_URL} for play {number}: {error}"
                break
            url = link.url
            if campaign.signedLaunch:
                token = launch.issue(
                    str(secret["launchKey"]), config.launch, award.campaign, account, award.awardId, int(now)
                )
                url = f"{url}?{urlencode({'t': token})}"
            expires = award.expiresAt.isoformat() if award.expiresAt else None
            issued[number] = self._plays.keep(
                IssuedPlay(award.awardId, number, award.campaign, link.play_id, url, expires), keep_until
            )
            fresh += 1
        if fresh:
            self._count(playsIssued=fresh)
        outcome.notes.append(
            f"{len(issued)} of {award.plays} play links issued for award {award.awardId} ({fresh} new)"
        )
        return [self._link_event(event, play) for play in sorted(issued.values(), key=lambda p: p.play)]

    def _link_event(self, event: GamePlayAwardedEvent, play: IssuedPlay) -> GamePlayLinkIssued:
        return GamePlayLinkIssued(
            eventId=inbound_event_id(NAME, "play-link", play.award_id, str(play.play)),
            occurredAt=self._now(),
            memberId=event.memberId,
            programId=event.programId,
            origin=Origin(connector=NAME, source="delivery", providerReference=f"{play.campaign} play {play.play_id}"),
            data=GamePlayLinkIssuedData(
                awardId=play.award_id,
                campaign=play.campaign,
                play=play.play,
                playId=play.play_id,
                url=play.url,
                expiresAt=event.data.expiresAt,
            ),
        )

    # --- the answered webhooks ---------------------------------------------------------------------

    def answer_webhook(self, call: WebhookCall) -> WebhookReply:
        if call.source == "launch":
            return self._launch(call)
        return self._writeback(call)

    def _refuse(self, code: int, message: str) -> WebhookReply:
        self._count(**{REFUSED_COUNT: 1})
        return WebhookReply(WebhookAnswer(status=api.HTTP_STATUS[code], body=api.answer_body(code, message)))

    def _writeback(self, call: WebhookCall) -> WebhookReply:
        """Nothing is stored or emitted before the token is the campaign's; then an unknown account or win
        level is refused with its code, and a win is one POINTS_AWARD_REQUESTED, however often it comes."""
        try:
            writeback = api.read_writeback(call.body)
        except api.NotAWriteback as error:
            self._count(**{REFUSED_COUNT: 1})
            return WebhookReply(WebhookAnswer(status=400, body=api.answer_body(400, str(error))))
        config, secret = self._config(), self._secret()
        credentials = api.campaign_credentials(secret, writeback.campaign)
        campaign = config.campaigns.get(writeback.campaign)
        if credentials is None or campaign is None:
            return self._refuse(api.UNKNOWN_CAMPAIGN, "unknown campaign")
        if not api.same_token(writeback.token, credentials.writeback_token):
            return self._refuse(api.BAD_TOKEN, "invalid token")
        keep = writeback.kept()
        if writeback.win_level == LOSS:
            self._count(playsLost=1)
            return WebhookReply(WebhookAnswer(status=200, body=api.answer_body(api.OK, "no prize"), keep=keep))
        points = campaign.winLevels.get(writeback.win_level)
        if points is None:
            return self._refuse(api.BAD_WIN_LEVEL, "invalid win level")
        account = self._plays.account(writeback.account)
        if account is None:
            return self._refuse(api.UNKNOWN_ACCOUNT, "unknown account")
        until = int(self._clock()) + config.accountRetentionDays * DAY_SECONDS
        if self._plays.claim_win(writeback.campaign, writeback.play, until):
            self._count(playsWon=1, pointsAwarded=points)
        else:
            self._count(writebacksRepeated=1)
        event = PointsAwardRequested(
            eventId=inbound_event_id(NAME, "points", writeback.campaign, writeback.play),
            occurredAt=call.receivedAt,
            memberId=account.member_id,
            programId=account.program_id,
            origin=Origin(
                connector=NAME,
                source=call.source,
                providerReference=f"{writeback.campaign} play {writeback.play}"[:256],
                receiptId=call.receiptId,
            ),
            data=PointsAwardRequestedData(
                points=points,
                reason=f"{campaign.reason}: win level {writeback.win_level}"[:255],
                reference=f"cataboom:{writeback.campaign}:{writeback.play}"[:128],
            ),
        )
        answer = WebhookAnswer(status=200, body=api.answer_body(api.OK, "success"), keep=keep)
        return WebhookReply(answer, WebhookReading(events=[event]))

    def _launch(self, call: WebhookCall) -> WebhookReply:
        """The authentication webhook: a launch token DIG signed, unexpired and unused, answers whose play
        it is (the member reference, never the member id); anything else is refused as a bad token."""
        token = call.query.get("t")
        if token is None:
            try:
                document = json.loads(call.body) if call.body else {}
            except ValueError:
                document = {}
            token = document.get("token") if isinstance(document, dict) else None
        if not isinstance(token, str) or not token:
            return self._refuse_launch("no launch token")
        config, secret = self._config(), self._secret()
        try:
            claims = launch.verify(token, str(secret["launchKey"]), config.launch, config.campaigns, int(self._clock()))
        except launch.LaunchRefused as error:
            return self._refuse_launch(str(error))
        if not self._plays.use_launch(claims.jti, claims.expires_at):
            return self._refuse_launch("the launch token was used already")
        self._count(launchesAccepted=1)
        body = json.dumps(
            {"code": api.OK, "accountid": claims.account, "campaignid": claims.campaign, "awardid": claims.award_id},
            separators=(",", ":"),
        )
        return WebhookReply(WebhookAnswer(status=200, body=body, keep=json.dumps({"jti": claims.jti})))

    def _refuse_launch(self, message: str) -> WebhookReply:
        self._count(launchesRefused=1)
        return WebhookReply(WebhookAnswer(status=401, body=api.answer_body(api.BAD_TOKEN, message)))
