"""A connector's tests run as DIG's unit tests do: no socket, no AWS account."""

from dig_connector_kit.testing.pytest_plugin import no_network, offline_aws  # noqa: F401 - autouse fixtures
