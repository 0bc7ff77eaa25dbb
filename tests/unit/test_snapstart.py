"""SnapStart: what the request-path functions build while Lambda snapshots, and what each restored
environment makes again for itself (dig_contracts.snapstart)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parameters import base

import connectors.optimove.handler  # noqa: F401 - importing a handler registers its hooks
from dig_api import authorizer, dependencies
from dig_api import handler as api_handler  # noqa: F401
from dig_api.dependencies import providers
from dig_connector_kit import lambda_entry
from dig_connector_kit.lambda_entry import built
from dig_contracts import snapstart

# (Imported at collection: the X-Ray SDK opens its UDP emitter's socket when first imported.)


@pytest.fixture
def deployed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment the CDK gives the API and the connectors (building clients opens no socket)."""
    for name, value in {
        "AUDIT_TABLE_NAME": "audit",
        "CONFIG_TABLE_NAME": "config",
        "EVENT_BUS_NAME": "bus",
        "FILES_BUCKET_NAME": "files",
        "SIGNING_KEY_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:111111111111:secret:keys",
    }.items():
        monkeypatch.setenv(name, value)


def restore() -> None:
    """What Lambda does when an environment resumes from the snapshot: each hook, in order."""
    for hook in snapstart.restore_hooks():
        hook()


def test_the_request_path_functions_register_their_restore_hooks() -> None:

    hooks = snapstart.restore_hooks()
    assert hooks.index(snapstart.reseed_and_forget) < hooks.index(dependencies.refresh)
    assert authorizer._refresh in hooks  # the secrets client, the DynamoDB client and the revocation list
    assert lambda_entry._BUILT["optimove"].cache_clear in hooks  # type: ignore[attr-defined]


def test_environments_restored_from_one_snapshot_draw_different_random_numbers() -> None:

    snapshot = random.getstate()
    random.setstate(snapshot)
    restore()
    first = [random.random() for _ in range(3)]
    random.setstate(snapshot)
    restore()
    second = [random.random() for _ in range(3)]
    random.setstate(snapshot)
    assert first != second  # without the reseed, both would repeat the snapshot's sequence


def test_after_a_restore_the_api_and_the_connector_build_their_clients_again_and_forget_cached_secrets(
    deployed: None, monkeypatch: pytest.MonkeyPatch
) -> None:

    providers.reset()
    ingest = providers.ingest()
    kit, _ = built("optimove", fresh=True)
    client = ingest.audit.table.client  # type: ignore[attr-defined]

    # Powertools' get_secret keeps its provider, with the values it cached and its client, here.
    monkeypatch.setitem(base.DEFAULT_PROVIDERS, "secrets", object())
    restore()

    rebuilt = providers.ingest()
    assert rebuilt is not ingest
    assert rebuilt.audit.table.client is not client  # type: ignore[attr-defined]
    assert built("optimove")[0] is not kit
    assert "secrets" not in base.DEFAULT_PROVIDERS


def test_a_function_builds_its_clients_at_init_only_while_lambda_snapshots(monkeypatch: pytest.MonkeyPatch) -> None:
    warmed: list[Any] = []
    monkeypatch.delenv(snapstart.INITIALIZATION_TYPE, raising=False)
    snapstart.prepare(warm=lambda: warmed.append("on demand"), refresh=lambda: None)
    monkeypatch.setenv(snapstart.INITIALIZATION_TYPE, snapstart.SNAP_START)
    snapstart.prepare(warm=lambda: warmed.append("snap-start"), refresh=lambda: None)
    assert warmed == ["snap-start"]


def test_sessions_share_one_loader_of_service_models_but_resolve_credentials_each() -> None:
    first, second = snapstart.session(), snapstart.session()
    assert first._session.get_component("data_loader") is second._session.get_component("data_loader")
    assert first._session is not second._session


def test_a_restored_authorizer_reads_its_secrets_and_revocations_afresh(monkeypatch: pytest.MonkeyPatch) -> None:
    from db.revocations import Revocations

    monkeypatch.setattr(authorizer, "_revocations", (0.0, Revocations(tokens={"j": 1})))
    secrets = authorizer._secrets_provider()
    restore()
    assert authorizer._revocations is None
    assert authorizer._secrets_provider() is not secrets
