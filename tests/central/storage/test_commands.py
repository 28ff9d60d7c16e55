"""The command queue's tables on both backends: submit, attempts, per-operation results,
recovery after a crash, organisations and rights, webhook deliveries, audit."""

from __future__ import annotations

import hashlib

import pytest

from central.queueing import CommandStatus
from central.storage import SqlStore, open_store
from central.storage.commands import (
    ADMIN,
    NewCommand,
    OrganisationExists,
    UnknownOrganisation,
)
from tests.central.storage._helpers import at


def _sql(store: SqlStore) -> object:
    return store


def new_command(cid: str, *, org: str | None = "acme", bypass: bool = False) -> NewCommand:
    return NewCommand(
        correlation_id=cid,
        station_id="SUBS001",
        organisation=org,
        priority=7,
        schedule_time=at(60),
        deadline=at(3600),
        bypass_retry=bypass,
        operations=(("GetConfiguration", {"key": ["A"]}), ("Reset", {})),
    )


def test_a_submitted_bundle_survives_reopening_with_its_operations(store_url: str) -> None:
    store = open_store(store_url)
    try:
        record = store.submit_command(new_command("c1"), at=at(0))
    finally:
        store.close()
    assert record.status is CommandStatus.QUEUED
    store = open_store(store_url)
    try:
        again = store.get_command("c1")
        queued = store.queued_commands()
    finally:
        store.close()
    assert again == record
    assert (again.priority, again.schedule_time, again.deadline) == (7, at(60), at(3600))
    assert [(op.name, op.params, op.status) for op in again.operations] == [
        ("GetConfiguration", {"key": ["A"]}, "pending"),
        ("Reset", {}, "pending"),
    ]
    assert [c.correlation_id for c in queued] == ["c1"]


def test_an_attempt_records_each_operation_and_a_retry_keeps_what_is_done(store: SqlStore) -> None:
    store.submit_command(new_command("c1"), at=at(0))
    started = store.start_attempt("c1", at=at(61))
    assert started is not None
    assert (started.status, started.attempts, started.last_attempt_at) == (
        CommandStatus.RUNNING,
        1,
        at(61),
    )
    assert store.start_attempt("c1", at=at(62)) is None  # already running
    store.record_operation("c1", 0, result={"configurationKey": []}, error=None, at=at(62))
    store.record_operation("c1", 1, result=None, error={"error": "timeout"}, at=at(63))
    queued = store.finish_attempt("c1", status=CommandStatus.QUEUED, retry_at=at(90), at=at(63))
    assert queued is not None
    assert (queued.status, queued.retry_at, queued.finished_at) == (
        CommandStatus.QUEUED,
        at(90),
        None,
    )
    assert [op.status for op in queued.operations] == ["done", "failed"]
    store.start_attempt("c1", at=at(91))
    store.record_operation("c1", 1, result={"status": "Accepted"}, error=None, at=at(92))
    done = store.finish_attempt("c1", status=CommandStatus.DONE, at=at(92))
    assert done is not None
    assert done.status is CommandStatus.DONE
    assert done.finished_at == at(92)
    assert [(op.status, op.attempts) for op in done.operations] == [("done", 1), ("done", 2)]
    assert done.operations[1].result == {"status": "Accepted"}
    trail = store.audit_trail(station_id="SUBS001")
    assert [(a.actor, a.outcome, a.what) for a in trail] == [
        ("acme", "done", ["GetConfiguration", "Reset"]),
        ("acme", "submitted", ["GetConfiguration", "Reset"]),
    ]


def test_an_expiry_and_a_start_cannot_both_win(store: SqlStore) -> None:
    store.submit_command(new_command("c1"), at=at(0))
    expired = store.finish_attempt(
        "c1", status=CommandStatus.EXPIRED, at=at(3600), only_if=CommandStatus.QUEUED
    )
    assert expired is not None
    assert expired.status is CommandStatus.EXPIRED
    assert store.start_attempt("c1", at=at(3601)) is None
    assert store.queued_commands() == []


def test_recovery_requeues_running_commands_unless_they_bypass_retry(store: SqlStore) -> None:
    store.submit_command(new_command("retry"), at=at(0))
    store.submit_command(new_command("once", bypass=True), at=at(0))
    store.start_attempt("retry", at=at(61))
    store.start_attempt("once", at=at(61))
    store.record_operation("once", 0, result={"configurationKey": []}, error=None, at=at(62))
    finals = store.recover_interrupted(at=at(100))
    assert [c.correlation_id for c in finals] == ["once"]
    once = store.get_command("once")
    retry = store.get_command("retry")
    assert once is not None
    assert retry is not None
    assert once.status is CommandStatus.FAILED
    assert [op.status for op in once.operations] == ["done", "failed"]
    assert once.operations[1].error is not None
    assert once.operations[1].error["error"] == "interrupted"
    assert (retry.status, retry.attempts) == (CommandStatus.QUEUED, 1)


def test_lists_filter_by_station_organisation_and_status_newest_first(store: SqlStore) -> None:
    store.submit_command(new_command("a"), at=at(0))
    store.submit_command(new_command("b", org=None), at=at(1))
    store.submit_command(new_command("c"), at=at(2))
    assert [c.correlation_id for c in store.list_commands()] == ["c", "b", "a"]
    assert [c.correlation_id for c in store.list_commands(organisation="acme")] == ["c", "a"]
    assert [c.correlation_id for c in store.list_commands(limit=1)] == ["c"]
    assert store.list_commands(station_id="OTHER") == []
    assert store.list_commands(status=CommandStatus.DONE) == []
    assert store.audit_trail(actor=ADMIN)[0].correlation_id == "b"


def test_organisations_tokens_ownership_and_grants(store: SqlStore) -> None:
    store.add_organisation("acme", at=at(0))
    with pytest.raises(OrganisationExists):
        store.add_organisation("acme", at=at(1))
    with pytest.raises(UnknownOrganisation):
        store.set_owner("nobody", "SUBS001", owned=True)
    digest = hashlib.sha256(b"secret").hexdigest()
    store.add_org_token("acme", digest, at=at(1))
    assert store.organisation_of_token(digest) == "acme"
    assert store.organisation_of_token(hashlib.sha256(b"other").hexdigest()) is None
    store.set_owner("acme", "SUBS001", owned=True)
    store.set_owner("acme", "SUBS001", owned=True)  # idempotent
    store.set_grant("acme", "SUBS002", "read", granted=True)
    store.set_grant("acme", "SUBS002", "lights", granted=True)
    store.set_grant("acme", "SUBS002", "lights", granted=False)
    assert store.station_rights("acme", "SUBS001") == (True, frozenset())
    assert store.station_rights("acme", "SUBS002") == (False, frozenset({"read"}))
    store.set_webhook("acme", "http://127.0.0.1:1/hook", at=at(2))
    store.set_webhook("acme", "http://127.0.0.1:2/hook", at=at(3))
    org = store.get_organisation("acme")
    assert org is not None
    assert (org.stations, org.grants, org.webhook, org.tokens) == (
        frozenset({"SUBS001"}),
        {"SUBS002": frozenset({"read"})},
        "http://127.0.0.1:2/hook",
        1,
    )
    assert [o.name for o in store.list_organisations()] == ["acme"]


def test_a_final_result_queues_one_webhook_delivery_in_the_same_transaction(
    store: SqlStore,
) -> None:
    store.add_organisation("acme", at=at(0))
    store.set_webhook("acme", "http://127.0.0.1:9/hook", at=at(0))
    store.submit_command(new_command("c1"), at=at(0))
    store.submit_command(new_command("admin", org=None), at=at(0))
    for cid in ("c1", "admin"):
        store.start_attempt(cid, at=at(61))
        store.finish_attempt(cid, status=CommandStatus.FAILED, at=at(62))
    (delivery,) = store.pending_deliveries()
    assert delivery.body == {"correlationId": "c1", "status": "failed", "station": "SUBS001"}
    assert (delivery.url, delivery.attempts, delivery.next_at) == (
        "http://127.0.0.1:9/hook",
        0,
        at(62),
    )
    store.record_delivery("c1", delivered=False, error="HTTP 500", next_at=at(70), at=at(62))
    assert store.delivery_state("c1") == ("pending", 1, "HTTP 500")
    assert store.pending_deliveries()[0].next_at == at(70)
    store.record_delivery("c1", delivered=True, at=at(70))
    assert store.delivery_state("c1") == ("delivered", 2, None)
    assert store.pending_deliveries() == []
    assert store.delivery_state("admin") is None
