"""Python client of runs_service: log training runs without ever blocking on the network."""

from runs_client._points import InvalidInput
from runs_client._version import __version__
from runs_client.client import Run, RunsClient, RunsClientError

__all__ = ["InvalidInput", "Run", "RunsClient", "RunsClientError", "__version__"]
