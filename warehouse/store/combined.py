"""The whole store: one class over the parts, as every caller uses it."""

from __future__ import annotations

from warehouse.store.alerts import AlertStore
from warehouse.store.cycles import CycleStore
from warehouse.store.mentions import MentionStore


class Store(CycleStore, MentionStore, AlertStore):
    """Named reads and writes of the warehouse; the connection is the caller's."""
