"""The durable outbox: events committed before they count as emitted, delivered FIFO."""

from rtu.outbox.memory import MemoryQueue
from rtu.outbox.pump import LinkUp, Outbox, Send, StorageFault, pump_loop
from rtu.outbox.store import (
    METER_VALUES,
    DeadLetter,
    Entry,
    FailOutcome,
    OutboxStatus,
    OutboxStore,
    read_status,
)

__all__ = [
    "METER_VALUES",
    "DeadLetter",
    "Entry",
    "FailOutcome",
    "LinkUp",
    "MemoryQueue",
    "Outbox",
    "OutboxStatus",
    "OutboxStore",
    "Send",
    "StorageFault",
    "pump_loop",
    "read_status",
]
