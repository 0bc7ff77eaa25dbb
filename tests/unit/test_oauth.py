"""The kit's client-credentials token: asked for once and kept, renewed with a margin and on request,
an expired-at-birth token asked for once more, a refusal said as such."""

from __future__ import annotations

import json
from collections.abc import Mapping

import httpx
import pytest

from dig_connector_kit.oauth import ClientCredentialsToken, TokenRefused
from dig_connector_kit.testing import SimulatedClock


class Token(ClientCredentialsToken):
    def _request(self, secret: Mapping[str, str]) -> httpx.Response:
        return self._http.post("https://idp.test/token", data={"client_id": secret["clientId"]})


def token_source(answers: list[httpx.Response], clock: SimulatedClock) -> tuple[Token, list[httpx.Request]]:
    asked: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        return answers.pop(0)

    http = httpx.Client(transport=httpx.MockTransport(answer))
    return Token(http, lambda: {"clientId": "c"}, provider="The IdP", margin_seconds=60, clock=clock), asked


def ok(token: str, expires_in: int) -> httpx.Response:
    return httpx.Response(200, content=json.dumps({"access_token": token, "expires_in": expires_in}))


def test_a_token_is_kept_until_its_margin_then_renewed_and_renewed_on_request() -> None:
    clock = SimulatedClock()
    source, asked = token_source([ok("t1", 3600), ok("t2", 3600), ok("t3", 3600)], clock)
    assert [source.token(), source.token()] == ["t1", "t1"]
    clock.now += 3600 - 59  # within the margin: a new one first
    assert source.authorize(None) == {"Authorization": "Bearer t2"}  # type: ignore[arg-type]
    source.renew()  # the provider said it expired
    assert source.token() == "t3"
    assert (len(asked), source.fetched) == (3, 3)
    assert asked[0].content == b"client_id=c"


def test_a_token_at_the_end_of_its_life_is_asked_for_once_more() -> None:
    source, asked = token_source([ok("dying", 0), ok("fresh", 3600)], SimulatedClock())
    assert source.token() == "fresh"
    assert len(asked) == 2


@pytest.mark.parametrize("status", [400, 401, 403])
def test_refused_credentials_are_a_token_refused_naming_the_provider(status: int) -> None:
    source, _ = token_source([httpx.Response(status, content=b"{}")], SimulatedClock())
    with pytest.raises(TokenRefused, match=f"The IdP refused the client's credentials \\({status}\\)"):
        source.token()


def test_an_answer_without_a_token_is_an_http_error() -> None:
    source, _ = token_source([httpx.Response(200, content=b'{"expires_in": 10}')], SimulatedClock())
    with pytest.raises(httpx.HTTPError, match="The IdP gave no access_token"):
        source.token()
