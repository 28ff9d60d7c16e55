"""Versioned schema migrations, shared by SQLite and PostgreSQL.

`MIGRATIONS[i]` has version i + 1. A database records every version applied in
`schema_version`; `SqlStore` applies the missing ones at open, all in one
transaction, under a lock (so two processes opening the same database at once
migrate it once). Released migrations are never edited: a change is a new entry.

Statements may use {id} (an auto-increment primary key), {ts} (a UTC instant)
and {bool}; each backend substitutes its own types (`_backends.ddl_types`).

Design notes on the tables:
- No foreign key from the history tables to `station`: removing a station from
  the registry (revoking its credentials) never deletes what it sent.
- Each at-least-once event has a UNIQUE key on its identity and is written with
  INSERT ... ON CONFLICT DO NOTHING, so a re-sent event is stored once.
- `streetlight_mode.contactor_id` is 0 for "all contactors" (absent on the wire,
  §6.7 Table 7): a NULL would make the unique key never match (NULLs are distinct).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MIGRATIONS", "SCHEMA_VERSION_DDL", "Migration"]


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


SCHEMA_VERSION_DDL = """
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at {ts} NOT NULL DEFAULT CURRENT_TIMESTAMP
)"""

_INITIAL = (
    """
    CREATE TABLE station (
        station_id TEXT PRIMARY KEY,
        password_hash TEXT,
        cert_identity TEXT,
        boot_policy TEXT NOT NULL CHECK (boot_policy IN ('Accepted', 'Pending', 'Rejected')),
        heartbeat_interval INTEGER NOT NULL CHECK (heartbeat_interval > 0),
        created_at {ts} NOT NULL,
        enabled {bool} NOT NULL
    )""",
    """
    CREATE TABLE station_liveness (
        station_id TEXT PRIMARY KEY,
        last_seen {ts},
        connection_id TEXT,
        connected_since {ts},
        disconnected_at {ts}
    )""",
    """
    CREATE TABLE boot_notification (
        id {id},
        station_id TEXT NOT NULL,
        vendor TEXT NOT NULL,
        model TEXT NOT NULL,
        station_number TEXT NOT NULL,
        serial_number TEXT NOT NULL,
        firmware_version TEXT NOT NULL,
        iccid TEXT NOT NULL,
        imsi TEXT NOT NULL,
        answered_status TEXT NOT NULL,
        received_at {ts} NOT NULL
    )""",
    "CREATE INDEX boot_notification_by_time ON boot_notification (station_id, received_at)",
    """
    CREATE TABLE status_notification (
        id {id},
        station_id TEXT NOT NULL,
        status TEXT NOT NULL,
        error_code TEXT NOT NULL,
        info TEXT,
        timestamp {ts},
        vendor_id TEXT,
        vendor_error_code TEXT,
        test {bool},
        event_key TEXT,
        occurred_at {ts} NOT NULL,
        received_at {ts} NOT NULL,
        UNIQUE (station_id, event_key)
    )""",
    "CREATE INDEX status_notification_by_time ON status_notification (station_id, occurred_at)",
    """
    CREATE TABLE open_fault (
        station_id TEXT NOT NULL,
        error_code TEXT NOT NULL,
        vendor_id TEXT NOT NULL,
        vendor_error_code TEXT NOT NULL,
        info TEXT,
        raised_at {ts} NOT NULL,
        last_raised_at {ts} NOT NULL,
        received_at {ts} NOT NULL,
        PRIMARY KEY (station_id, error_code, vendor_id, vendor_error_code)
    )""",
    """
    CREATE TABLE streetlight_status (
        id {id},
        station_id TEXT NOT NULL,
        contactor_id INTEGER NOT NULL,
        status TEXT NOT NULL,
        timestamp {ts} NOT NULL,
        unexpected {bool},
        received_at {ts} NOT NULL,
        UNIQUE (station_id, contactor_id, timestamp, status)
    )""",
    "CREATE INDEX streetlight_status_by_time ON streetlight_status (station_id, timestamp)",
    """
    CREATE TABLE streetlight_mode (
        id {id},
        station_id TEXT NOT NULL,
        contactor_id INTEGER NOT NULL,
        mode TEXT NOT NULL,
        timestamp {ts} NOT NULL,
        received_at {ts} NOT NULL,
        UNIQUE (station_id, contactor_id, timestamp, mode)
    )""",
    "CREATE INDEX streetlight_mode_by_time ON streetlight_mode (station_id, timestamp)",
    """
    CREATE TABLE meter_value (
        station_id TEXT NOT NULL,
        timestamp {ts} NOT NULL,
        measurand TEXT NOT NULL,
        location TEXT NOT NULL,
        context TEXT NOT NULL,
        value TEXT NOT NULL,
        unit TEXT NOT NULL,
        format TEXT NOT NULL,
        received_at {ts} NOT NULL,
        PRIMARY KEY (station_id, timestamp, measurand, location, context)
    )""",
    "CREATE INDEX meter_value_by_measurand ON meter_value (station_id, measurand, timestamp)",
    """
    CREATE TABLE firmware_status (
        id {id},
        station_id TEXT NOT NULL,
        status TEXT NOT NULL,
        request_id TEXT,
        received_at {ts} NOT NULL
    )""",
    "CREATE INDEX firmware_status_by_time ON firmware_status (station_id, received_at)",
    """
    CREATE TABLE get_file_status (
        id {id},
        station_id TEXT NOT NULL,
        status TEXT NOT NULL,
        request_id TEXT,
        received_at {ts} NOT NULL
    )""",
    "CREATE INDEX get_file_status_by_time ON get_file_status (station_id, received_at)",
    """
    CREATE TABLE uploaded_file (
        id {id},
        station_id TEXT NOT NULL,
        request_id TEXT,
        file_name TEXT NOT NULL,
        stored_path TEXT NOT NULL,
        size BIGINT NOT NULL,
        sha256 TEXT NOT NULL,
        uploaded_at {ts} NOT NULL
    )""",
    "CREATE INDEX uploaded_file_by_time ON uploaded_file (station_id, uploaded_at)",
)

# Issue 10: the persistent command queue, organisations and their rights, webhooks,
# the audit trail (central.storage.commands). `command.seq` is the submission order
# (FIFO within a priority); times are UTC instants like everywhere else.
_COMMAND_QUEUE = (
    """
    CREATE TABLE organisation (
        name TEXT PRIMARY KEY,
        created_at {ts} NOT NULL
    )""",
    """
    CREATE TABLE org_token (
        token_hash TEXT PRIMARY KEY,
        organisation TEXT NOT NULL,
        created_at {ts} NOT NULL
    )""",
    """
    CREATE TABLE org_station (
        organisation TEXT NOT NULL,
        station_id TEXT NOT NULL,
        PRIMARY KEY (organisation, station_id)
    )""",
    """
    CREATE TABLE org_grant (
        organisation TEXT NOT NULL,
        station_id TEXT NOT NULL,
        function TEXT NOT NULL,
        PRIMARY KEY (organisation, station_id, function)
    )""",
    """
    CREATE TABLE org_webhook (
        organisation TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        updated_at {ts} NOT NULL
    )""",
    """
    CREATE TABLE command (
        seq {id},
        correlation_id TEXT NOT NULL UNIQUE,
        station_id TEXT NOT NULL,
        organisation TEXT,
        priority INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 9),
        schedule_time {ts},
        deadline {ts},
        bypass_retry {bool} NOT NULL,
        status TEXT NOT NULL
            CHECK (status IN ('queued', 'running', 'done', 'failed', 'expired')),
        attempts INTEGER NOT NULL,
        last_attempt_at {ts},
        retry_at {ts},
        submitted_at {ts} NOT NULL,
        finished_at {ts}
    )""",
    "CREATE INDEX command_by_status ON command (status, station_id)",
    "CREATE INDEX command_by_station ON command (station_id, seq)",
    """
    CREATE TABLE command_operation (
        correlation_id TEXT NOT NULL,
        position INTEGER NOT NULL,
        name TEXT NOT NULL,
        params TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'done', 'failed')),
        result TEXT,
        error TEXT,
        attempts INTEGER NOT NULL,
        finished_at {ts},
        PRIMARY KEY (correlation_id, position)
    )""",
    """
    CREATE TABLE webhook_delivery (
        correlation_id TEXT PRIMARY KEY,
        organisation TEXT NOT NULL,
        url TEXT NOT NULL,
        body TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
        attempts INTEGER NOT NULL,
        next_at {ts} NOT NULL,
        last_error TEXT,
        delivered_at {ts}
    )""",
    "CREATE INDEX webhook_delivery_due ON webhook_delivery (state, next_at)",
    """
    CREATE TABLE audit (
        id {id},
        at {ts} NOT NULL,
        actor TEXT NOT NULL,
        station_id TEXT NOT NULL,
        correlation_id TEXT,
        what TEXT NOT NULL,
        outcome TEXT NOT NULL,
        detail TEXT
    )""",
    "CREATE INDEX audit_by_time ON audit (at)",
    "CREATE INDEX audit_by_station ON audit (station_id, at)",
)

# The meter inventory (central.storage.inventory). `meter.station_id` names the
# station without a foreign key, like the history tables; one meter per M-Bus
# channel 1..4 of a station is checked by the code in the writing transaction (a
# destroyed meter gives its channel back, which a plain UNIQUE could not express).
_INVENTORY = (
    """
    CREATE TABLE meter (
        meter_id TEXT PRIMARY KEY,
        station_id TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('E', 'G')),
        protocol TEXT NOT NULL CHECK (protocol IN ('DLMS', 'P1')),
        channel INTEGER NOT NULL CHECK (channel BETWEEN 0 AND 4),
        lifecycle TEXT NOT NULL CHECK (lifecycle IN ('NEW_IN_INVENTORY', 'READY_FOR_USE',
            'IN_USE', 'RETURNED_TO_SUPPLIER', 'DESTROYED')),
        shipment_id BIGINT,
        created_at {ts} NOT NULL,
        status_changed_at {ts} NOT NULL
    )""",
    "CREATE INDEX meter_by_station ON meter (station_id, channel)",
    """
    CREATE TABLE station_time_zone (
        station_id TEXT PRIMARY KEY,
        time_zone TEXT NOT NULL
    )""",
    """
    CREATE TABLE shipment_import (
        id {id},
        sha256 TEXT NOT NULL,
        media_type TEXT NOT NULL,
        stations INTEGER NOT NULL,
        meters INTEGER NOT NULL,
        imported_at {ts} NOT NULL
    )""",
)

# The latest event per station and contactor, kept on write: the operator's station
# list reads one row per contactor instead of ranking each station's whole history
# (a station sends thousands of events a year). Filled from the history once.
_LATEST = (
    """
    CREATE TABLE streetlight_status_latest (
        station_id TEXT NOT NULL,
        contactor_id INTEGER NOT NULL,
        status TEXT NOT NULL,
        timestamp {ts} NOT NULL,
        unexpected {bool},
        received_at {ts} NOT NULL,
        PRIMARY KEY (station_id, contactor_id)
    )""",
    """
    INSERT INTO streetlight_status_latest
        (station_id, contactor_id, status, timestamp, unexpected, received_at)
    SELECT station_id, contactor_id, status, timestamp, unexpected, received_at FROM (
        SELECT *, ROW_NUMBER() OVER (
            PARTITION BY station_id, contactor_id ORDER BY timestamp DESC, id DESC) AS recency
        FROM streetlight_status) AS ranked
    WHERE recency = 1""",
    """
    CREATE TABLE streetlight_mode_latest (
        station_id TEXT NOT NULL,
        contactor_id INTEGER NOT NULL,
        mode TEXT NOT NULL,
        timestamp {ts} NOT NULL,
        received_at {ts} NOT NULL,
        PRIMARY KEY (station_id, contactor_id)
    )""",
    """
    INSERT INTO streetlight_mode_latest (station_id, contactor_id, mode, timestamp, received_at)
    SELECT station_id, contactor_id, mode, timestamp, received_at FROM (
        SELECT *, ROW_NUMBER() OVER (
            PARTITION BY station_id, contactor_id ORDER BY timestamp DESC, id DESC) AS recency
        FROM streetlight_mode) AS ranked
    WHERE recency = 1""",
)

# Passwords that passed scrypt, remembered as a keyed digest (central/storage/passwords.py,
# "the credential cache"), each bound to the scrypt hash it was checked against.
_CREDENTIALS = (
    """
    CREATE TABLE station_credential (
        station_id TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,
        digest TEXT NOT NULL
    )""",
)

# Webhook notifications are signed with a per-organisation secret (central/webhooks.py);
# a delivery keeps the secret of the webhook it was queued for, as it keeps its URL.
_SIGNED_WEBHOOKS = (
    "ALTER TABLE org_webhook ADD COLUMN secret TEXT",
    "ALTER TABLE webhook_delivery ADD COLUMN secret TEXT",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial schema", _INITIAL),
    Migration(2, "command queue, organisations, webhooks, audit", _COMMAND_QUEUE),
    Migration(3, "meter inventory and shipment imports", _INVENTORY),
    Migration(4, "latest streetlight status and mode per contactor", _LATEST),
    Migration(5, "remembered station credentials", _CREDENTIALS),
    Migration(6, "signed webhooks", _SIGNED_WEBHOOKS),
)
