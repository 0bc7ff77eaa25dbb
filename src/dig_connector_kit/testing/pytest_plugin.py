"""Fixtures a connector's ``tests/conftest.py`` imports: its unit tests never open a socket (the
provider's double is served through ``mock_transport``) and never reach an AWS account."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

OFFLINE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
}


@pytest.fixture(autouse=True)
def no_network() -> Iterator[None]:
    from pytest_socket import disable_socket, enable_socket

    disable_socket(allow_unix_socket=True)  # Unix sockets stay allowed for asyncio
    yield
    enable_socket()


@pytest.fixture(autouse=True)
def offline_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in OFFLINE_AWS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
