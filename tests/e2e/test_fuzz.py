"""Requests generated from the OpenAPI document (schemathesis), valid and invalid, against a local
stack of their own: at least 1,000 requests, and not one 5xx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode

from dig_api.openapi import openapi_document
from tests.e2e.conftest import LocalStackProcess, start_local_stack

REQUESTS = 1_100  # spread evenly over every operation, valid and invalid


@pytest.fixture(scope="module")
def fuzzed_stack() -> Iterator[LocalStackProcess]:
    yield from start_local_stack()


def test_generated_requests_never_get_a_server_error(fuzzed_stack: LocalStackProcess) -> None:
    schema = schemathesis.openapi.from_dict(json.loads(openapi_document()))
    authorization = fuzzed_stack.http.headers["Authorization"]
    sent: list[tuple[str, int]] = []
    server_errors: list[dict[str, Any]] = []

    operations = [result.ok() for result in schema.get_all_operations()]
    examples = -(-REQUESTS // (2 * len(operations)))
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=examples,
                deadline=None,
                database=None,
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def exercise(case: Any) -> None:
                response = case.call(base_url=fuzzed_stack.url, headers={"Authorization": authorization}, timeout=60)
                sent.append((case.operation.label, response.status_code))
                if response.status_code >= 500:
                    server_errors.append(
                        {"operation": case.operation.label, "status": response.status_code, "body": response.text[:300]}
                    )

            exercise()

    assert len(sent) >= 1000, len(sent)
    assert server_errors == []
    statuses = {status for _, status in sent}
    assert {202, 422} <= statuses  # both valid and invalid requests went through
