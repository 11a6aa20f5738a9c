"""The hook: a Baseten connection turned into a client."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from airflow.sdk import BaseHook, Connection

from baseten_training_async import AsyncTrainingClient, TrainingClient

__all__ = ["BasetenTrainingHook"]


def _base_url(connection: Connection) -> str | None:
    # The raw extra, not ``extra_dejson``: that one masks secrets through the supervisor,
    # which an event loop (a trigger's) must not call synchronously.
    extra = json.loads(connection.extra) if connection.extra else {}
    if isinstance(extra, dict) and extra.get("base_url"):
        return str(extra["base_url"])
    if not connection.host:
        return None
    host = connection.host.rstrip("/")
    if "://" not in host:
        host = f"{connection.schema or 'https'}://{host}"
    return f"{host}:{connection.port}" if connection.port else host


class BasetenTrainingHook(BaseHook):
    """Clients for the Baseten Training API from an Airflow connection of type ``baseten``.

    The connection's password is the API key. Its host (optionally with port)
    or its extra ``base_url`` is the API's base URL; both default to the real
    API. For example ``AIRFLOW_CONN_BASETEN_DEFAULT='{"conn_type": "baseten",
    "password": "<api key>"}'``.

    Args:
        baseten_conn_id: The connection's id.
        **client_options: Passed to the client (``timeout``, ``max_retries``, ...).
    """

    conn_name_attr = "baseten_conn_id"
    default_conn_name = "baseten_default"
    conn_type = "baseten"
    hook_name = "Baseten Training"

    def __init__(self, baseten_conn_id: str = default_conn_name, **client_options: Any) -> None:
        super().__init__()
        self.baseten_conn_id = baseten_conn_id
        self.client_options = client_options

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """How the connection form shows a Baseten connection."""
        return {
            "hidden_fields": ["login", "schema", "port"],
            "relabeling": {"password": "API key", "host": "Base URL (optional)"},
            "placeholders": {"host": "https://api.baseten.co"},
        }

    def _options(self, connection: Connection) -> dict[str, Any]:
        options = dict(self.client_options)
        base_url = _base_url(connection)
        if base_url is not None:
            options.setdefault("base_url", base_url)
        return options

    def get_conn(self) -> TrainingClient:
        """A new synchronous client (close it, or use it with ``with``)."""
        connection = self.get_connection(self.baseten_conn_id)
        return TrainingClient(connection.password, **self._options(connection))

    async def aget_client(self) -> AsyncTrainingClient:
        """A new async client, for triggers (close it, or use it with ``async with``)."""
        if hasattr(BaseHook, "aget_connection"):  # Airflow 3.1 and later
            connection = await self.aget_connection(self.baseten_conn_id)
        else:
            connection = await asyncio.to_thread(self.get_connection, self.baseten_conn_id)
        return AsyncTrainingClient(connection.password, **self._options(connection))
