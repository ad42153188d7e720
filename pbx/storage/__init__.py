"""Storage of the PBX in SQLAlchemy (L3): SQLite by default, PostgreSQL by URL.

``Database.open(url)`` migrates the schema (Alembic, packaged migrations) and hands out the
repositories the pure layers see through the protocols of `pbx.repositories`:
``location_store()``, ``agent_directory()``, ``cdr_sink()``, ``customer_directory()``, and for
the CTI ``cti_store()`` (desktop credentials, sessions) and ``form_store()`` (form saves, audit),
for the dialer ``dialer_store()`` (campaign targets, contact states, attempts, do-not-call list),
for reports ``interval_store()`` (queue and agent statistics per 15-minute interval).
"""

from pbx.storage.agents import SqlAgentDirectory
from pbx.storage.cdr import SqlCdrSink
from pbx.storage.cti import SqlCtiStore, SqlFormStore
from pbx.storage.customers import SqlCustomerDirectory
from pbx.storage.database import Database
from pbx.storage.dialer import SqlDialerStore
from pbx.storage.errors import StorageError
from pbx.storage.location import SqlLocationStore

__all__ = [
    "Database",
    "SqlAgentDirectory",
    "SqlCdrSink",
    "SqlCtiStore",
    "SqlCustomerDirectory",
    "SqlDialerStore",
    "SqlFormStore",
    "SqlLocationStore",
    "StorageError",
]
