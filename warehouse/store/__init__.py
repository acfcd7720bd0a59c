"""The queries and writes of the warehouse, over an injected DuckDB connection.

Writes are idempotent so that a retried or repeated cycle changes nothing it already did:
mentions are keyed by `mention_id` and inserted with ON CONFLICT DO NOTHING, source runs by
(cycle, source), outbox messages by a deterministic id. A cycle's load is one transaction: a
crash mid-load leaves the warehouse as it was before it.

One module per aggregate (sources, mentions, alerts, outbox, cycles, incidents); `Store` is
the whole, as every caller uses it.
"""

from warehouse.store.alerts import StoredAlert
from warehouse.store.base import DRILL_ALERTS, DRILL_SOURCES, SENTIMENT_LABEL_SQL, STORY_KEYS
from warehouse.store.combined import Store
from warehouse.store.incidents import INCIDENT_COLUMNS, IncidentStore, StoredIncident
from warehouse.store.mentions import LoadResult

__all__ = [
    "DRILL_ALERTS",
    "DRILL_SOURCES",
    "INCIDENT_COLUMNS",
    "SENTIMENT_LABEL_SQL",
    "STORY_KEYS",
    "IncidentStore",
    "LoadResult",
    "Store",
    "StoredAlert",
    "StoredIncident",
]
