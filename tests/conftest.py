"""Shared test set-up: no test ever reaches a real AWS account."""

from __future__ import annotations

import os

from dig_connector_kit.testing.pytest_plugin import OFFLINE_AWS

os.environ.update(
    {
        **OFFLINE_AWS,  # what a connector's own tests set too (dig_connector_kit.testing.pytest_plugin)
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
)
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_ENDPOINT_URL", None)
