"""An OAuth 2.0 client-credentials token, as Marketo, SFMC and Tipalti hand them out: asked for once,
kept until shortly before ``expires_in`` (providers throttle a token request per call), renewed when a
call answers that it expired, one request at a time across the invocation's threads. A connector says
how to ask (``_request``: its URL and body) and what else the answer holds (``_answered``); the token
travels only in the Authorization header, the client secret only in the token request's body."""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from dig_connector_kit.http import Request


class TokenRefused(Exception):
    """The provider refused the client's credentials (400, 401 or 403): no retry will mend it."""


class ClientCredentialsToken(ABC):
    def __init__(
        self,
        http: httpx.Client,
        credentials: Callable[[], Mapping[str, str]],
        *,
        provider: str,
        margin_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._credentials = credentials
        self._provider = provider
        self._margin = margin_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires = 0.0
        self.fetched = 0

    @abstractmethod
    def _request(self, secret: Mapping[str, str]) -> httpx.Response:
        """Ask the provider's token endpoint, with the client's credentials."""

    def _answered(self, body: Mapping[str, Any]) -> None:  # noqa: B027 - optional: most answers hold only the token
        """What else the answer says (SFMC: the REST base); raise httpx.HTTPError when it lacks it."""

    def authorize(self, _request: Request) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}"}

    def token(self) -> str:
        with self._lock:
            if self._token is None or self._expires - self._clock() < self._margin:
                self._fetch()
                if self._expires <= self._clock():  # at the end of its life (expires_in 0): once more
                    self._fetch()
            assert self._token is not None
            return self._token

    def renew(self) -> None:
        with self._lock:
            self._fetch()

    def _fetch(self) -> None:
        response = self._request(self._credentials())
        if response.status_code in (400, 401, 403):
            raise TokenRefused(f"{self._provider} refused the client's credentials ({response.status_code})")
        response.raise_for_status()
        body = response.json()
        if not isinstance(body, dict) or not body.get("access_token"):
            raise httpx.HTTPError(f"{self._provider} gave no access_token")
        self._answered(body)
        self._token = str(body["access_token"])
        self._expires = self._clock() + max(float(body.get("expires_in", 0)), 0.0)
        self.fetched += 1
