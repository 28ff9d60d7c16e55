"""OutboxStore on real SQLite files: FIFO, ack, backoff, dead letters, eviction, crashes."""

from __future__ import annotations

import contextlib
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from rtu.outbox import METER_VALUES, FailOutcome, OutboxStatus, OutboxStore, read_status
from rtu.outbox.store import MIGRATIONS, encode_payload
from rtu.storage import open_database

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
S = timedelta(seconds=1)
EVENT = "StreetlightStatusNotification"


def at(seconds: float) -> datetime:
    return T0 + seconds * S


def open_store(path: Path, **limits: object) -> OutboxStore:
    return OutboxStore.open(path, now=lambda: T0, **limits)  # type: ignore[arg-type]


def test_append_peek_ack_is_fifo(tmp_path: Path) -> None:
    store = open_store(tmp_path / "o.db")
    seqs = [store.append(EVENT, {"contactorId": n, "status": "On"}, at(n)) for n in range(5)]
    assert seqs == sorted(seqs)
    assert [e.seq for e in store.peek(10, at(9))] == seqs
    assert [e.seq for e in store.peek(2, at(9))] == seqs[:2]
    assert [e.seq for e in store.peek(2, at(9), after_seq=seqs[1])] == seqs[2:4]
    assert store.ack(seqs[0]) is True
    assert store.ack(seqs[0]) is False  # a second ack (late answer) is harmless
    assert [e.seq for e in store.peek(10, at(9))] == seqs[1:]
    assert store.depth() == 4
    assert store.oldest() == at(1)
    store.close()


def test_payload_is_stored_as_the_exact_wire_text(tmp_path: Path) -> None:
    store = open_store(tmp_path / "o.db")
    payload = {"timestamp": "2026-01-05T12:00:00Z", "status": "Off", "contactorId": 2, "µ": "é"}
    seq = store.append(EVENT, payload, T0)
    first = store.peek(1, T0)[0]
    assert (
        first.payload
        == '{"timestamp":"2026-01-05T12:00:00Z","status":"Off","contactorId":2,"µ":"é"}'
    )
    assert first.payload == encode_payload(payload)
    store.failed(seq, "InternalError", "try later", T0)
    store.close()
    reopened = open_store(tmp_path / "o.db")
    assert reopened.peek(1, at(3600))[0].payload == first.payload  # byte-identical re-send
    reopened.close()


def test_naive_and_nan_are_refused(tmp_path: Path) -> None:
    store = open_store(tmp_path / "o.db")
    with pytest.raises(ValueError, match="naive"):
        store.append(EVENT, {}, datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="JSON"):
        store.append(EVENT, {"v": float("nan")}, T0)
    assert store.depth() == 0
    store.close()


# attempts so far -> delay after the next CALLERROR (base 5 s, cap 60 s)
BACKOFF = [(0, 5), (1, 10), (2, 20), (3, 40), (4, 60), (5, 60), (8, 60)]


@pytest.mark.parametrize(("before", "delay"), BACKOFF, ids=[f"after-{b}" for b, _ in BACKOFF])
def test_callerror_backoff_doubles_up_to_the_cap(tmp_path: Path, before: int, delay: int) -> None:
    store = open_store(tmp_path / "o.db", retry_base=5 * S, retry_cap=60 * S, dead_letter_after=100)
    seq = store.append(EVENT, {}, T0)
    for _ in range(before):
        store.failed(seq, "GenericError", "", T0)
    assert store.failed(seq, "GenericError", "", at(1000)) is FailOutcome.RETRY
    assert store.peek(1, at(1000 + delay) - timedelta(microseconds=1)) == []
    [entry] = store.peek(1, at(1000 + delay))
    assert (entry.attempts, entry.not_before) == (before + 1, at(1000 + delay))
    assert store.earliest_retry(at(1000)) == at(1000 + delay)
    store.close()


def test_entry_in_backoff_holds_back_the_ones_behind_it(tmp_path: Path) -> None:
    store = open_store(tmp_path / "o.db", retry_base=10 * S)
    on = store.append(EVENT, {"status": "On"}, T0)
    off = store.append(EVENT, {"status": "Off"}, T0)
    store.failed(on, "InternalError", "", T0)
    assert store.peek(5, at(9)) == []  # "Off" must not overtake "On"
    assert [e.seq for e in store.peek(5, at(10))] == [on, off]
    store.close()


@pytest.mark.parametrize("n", [1, 2, 5])
def test_dead_letter_after_n_callerrors(tmp_path: Path, n: int) -> None:
    store = open_store(tmp_path / "o.db", dead_letter_after=n, retry_base=S)
    seq = store.append(EVENT, {"status": "On"}, T0)
    behind = store.append(EVENT, {"status": "Off"}, T0)
    outcomes = [
        store.failed(seq, "FormationViolation", f"attempt {i}", at(100 * i)) for i in range(n)
    ]
    assert outcomes == [FailOutcome.RETRY] * (n - 1) + [FailOutcome.DEAD_LETTERED]
    assert store.failed(seq, "FormationViolation", "", T0) is FailOutcome.UNKNOWN
    [dead] = store.dead_letters()
    assert (dead.seq, dead.action, dead.payload, dead.attempts) == (
        seq,
        EVENT,
        '{"status":"On"}',
        n,
    )
    assert (dead.code, dead.description, dead.created) == (
        "FormationViolation",
        f"attempt {n - 1}",
        T0,
    )
    assert dead.dead_since == at(100 * (n - 1))
    assert [e.seq for e in store.peek(5, at(100 * n))] == [behind]  # the queue moves on
    assert store.status().dead_letters == 1
    assert store.depth() == 1
    store.close()


# (queue before, as action initials: M = MeterValues, E = event) -> survivors after one
# more append with max_entries=4. The oldest MeterValues go first; events never.
EVICTION = [
    ("EEE", "M", "EEEM"),
    ("MEEE", "M", "EEEM"),
    ("EMEM", "E", "EEME"),
    ("MMMM", "M", "MMMM"),
    ("EEEE", "M", "EEEE"),  # the new MeterValues is itself the oldest one left
    ("EEEE", "E", "EEEEE"),  # over the bound: events are kept anyway
    ("EEEEM", "E", "EEEEE"),
]


@pytest.mark.parametrize(("before", "new", "after"), EVICTION, ids=[e[0] + e[1] for e in EVICTION])
def test_eviction_order(tmp_path: Path, before: str, new: str, after: str) -> None:
    store = open_store(tmp_path / "o.db", max_entries=10)
    actions = {"M": METER_VALUES, "E": EVENT}
    for i, kind in enumerate(before):
        store.append(actions[kind], {"i": i}, T0)
    store.close()
    store = open_store(tmp_path / "o.db", max_entries=4)  # lower the bound afterwards
    store.append(actions[new], {"i": len(before)}, T0)
    remaining = store.peek(100, T0)
    assert "".join("M" if e.action == METER_VALUES else "E" for e in remaining) == after
    assert store.depth() == len(after)
    evicted = len(before) + 1 - len(after)
    assert store.status().evicted_meter_values == evicted
    # survivors keep their order, and the evicted ones are the oldest MeterValues
    indexes = [json.loads(e.payload)["i"] for e in remaining]
    assert indexes == sorted(indexes)
    store.close()


def test_eviction_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = open_store(tmp_path / "o.db", max_entries=2)
    for i in range(3):
        store.append(METER_VALUES, {"i": i}, T0)
    assert "evicted 1 oldest MeterValues" in caplog.text
    store.close()


def test_status_for_the_cli_reads_without_writing(tmp_path: Path) -> None:
    store = open_store(tmp_path / "o.db", dead_letter_after=1)
    store.append(EVENT, {}, at(5))
    dead = store.append(EVENT, {}, at(6))
    store.failed(dead, "SecurityError", "not accepted", at(7))
    status, letters = read_status(tmp_path / "o.db")
    assert (status.depth, status.oldest, status.dead_letters) == (1, at(5), 1)
    assert [d.seq for d in letters] == [dead]
    assert status == store.status()
    store.close()


def test_depth_survives_reopening(tmp_path: Path) -> None:
    store = open_store(tmp_path / "o.db")
    for i in range(3):
        store.append(EVENT, {"i": i}, T0)
    store.close()
    store = open_store(tmp_path / "o.db")
    assert store.depth() == 3
    assert store.oldest() == T0
    store.close()


class OutboxMachine(RuleBasedStateMachine):
    """Any interleaving of append/ack/failed/time keeps FIFO and loses no event."""

    MAX = 6
    DEAD_AFTER = 3

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="outbox-machine-"))
        self.store = OutboxStore.open(
            self.dir / "o.db",
            now=lambda: T0,
            max_entries=self.MAX,
            dead_letter_after=self.DEAD_AFTER,
            retry_base=S,
            retry_cap=4 * S,
        )
        self.now = T0
        self.counter = 0
        self.appended: dict[int, tuple[str, str]] = {}  # seq -> (action, payload)
        self.acked: set[int] = set()

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.dir)

    def queued(self) -> list[int]:
        return [e.seq for e in self.store.peek(1000, T0 + timedelta(days=365))]

    @rule(meter=st.booleans())
    def append(self, meter: bool) -> None:
        self.counter += 1
        action = METER_VALUES if meter else EVENT
        payload = {"n": self.counter}
        seq = self.store.append(action, payload, self.now)
        assert seq not in self.appended
        self.appended[seq] = (action, encode_payload(payload))

    @precondition(lambda self: self.store.depth() > 0)
    @rule(data=st.data())
    def ack(self, data: st.DataObject) -> None:
        seq = data.draw(st.sampled_from(self.queued()))
        assert self.store.ack(seq)
        self.acked.add(seq)

    @precondition(lambda self: self.store.depth() > 0)
    @rule(data=st.data())
    def fail(self, data: st.DataObject) -> None:
        seq = data.draw(st.sampled_from(self.queued()))
        assert self.store.failed(seq, "GenericError", "no", self.now) is not FailOutcome.UNKNOWN

    @rule(seconds=st.sampled_from([0.5, 1, 3, 10]))
    def advance(self, seconds: float) -> None:
        self.now += seconds * S

    @invariant()
    def fifo_among_deliverable(self) -> None:
        everything = self.queued()
        assert everything == sorted(everything)
        due = [e.seq for e in self.store.peek(1000, self.now)]
        assert due == everything[: len(due)]  # a prefix of the queue, in order
        if len(due) < len(everything):  # stopped at an entry still in backoff
            blocked = self.store.peek(
                1, T0 + timedelta(days=365), after_seq=everything[len(due)] - 1
            )
            assert blocked[0].not_before is not None
            assert blocked[0].not_before > self.now
        assert self.store.depth() == len(everything)

    @invariant()
    def no_event_is_lost(self) -> None:
        queued = set(self.queued())
        dead = {d.seq for d in self.store.dead_letters()}
        for seq, (action, _) in self.appended.items():
            places = (seq in queued) + (seq in dead) + (seq in self.acked)
            if action == METER_VALUES:
                assert places <= 1
            else:
                assert places == 1, f"event {seq} lost"
        for entry in self.store.peek(1000, T0 + timedelta(days=365)):
            assert (entry.action, entry.payload) == self.appended[entry.seq]

    @invariant()
    def bounded_unless_only_events(self) -> None:
        entries = self.store.peek(1000, T0 + timedelta(days=365))
        if len(entries) > self.MAX:
            assert all(e.action != METER_VALUES for e in entries[:-1])


TestOutboxMachine = OutboxMachine.TestCase
TestOutboxMachine.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)


# The child appends events as fast as it can and prints each seq once `append`
# has returned: from then on the event counts as emitted and must survive SIGKILL.
CHILD = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime
    from pathlib import Path
    from rtu.outbox import OutboxStore

    store = OutboxStore.open(Path(sys.argv[1]), now=lambda: datetime.now(UTC))
    run = int(sys.argv[2])
    for n in range(1_000_000):
        seq = store.append(
            "StreetlightStatusNotification", {"run": run, "n": n}, datetime.now(UTC)
        )
        print(seq, flush=True)
    """
)


def test_committed_events_survive_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    rng = random.Random(20261123)
    promised: list[tuple[int, int, int]] = []  # (seq, run, n) printed by a child
    for run in range(20):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path), str(run)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        first = child.stdout.readline()  # the child is appending now
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=rng.uniform(0.0, 0.05))
        child.send_signal(signal.SIGKILL)
        rest = child.stdout.read()
        child.wait()
        child.stdout.close()
        assert child.returncode == -signal.SIGKILL
        lines = [first, *rest.splitlines()]
        promised.extend((int(line), run, n) for n, line in enumerate(lines) if line.strip())
    store = OutboxStore.open(path, now=lambda: T0)
    assert store.moved_aside is None
    stored = {e.seq: json.loads(e.payload) for e in store.peek(10**7, T0 + timedelta(days=1))}
    for seq, run, n in promised:
        assert stored.get(seq) == {"run": run, "n": n}, f"committed seq {seq} lost"
    in_order = [(p["run"], p["n"]) for _, p in sorted(stored.items())]
    assert in_order == sorted(in_order)  # FIFO across all the crashes
    assert len(promised) >= 20
    store.close()


def test_ack_skips_its_own_fsync_but_nothing_else_does(tmp_path: Path) -> None:
    database = open_database(tmp_path / "o.db", MIGRATIONS, now=lambda: T0)
    store = OutboxStore(database)
    seq = store.append(EVENT, {}, T0)
    assert store.ack(seq)
    assert database.connection.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL again
    store.close()


@pytest.mark.parametrize(
    ("status", "line"),
    [
        (OutboxStatus(0, None, 0, 0), "outbox 0 queued"),
        (OutboxStatus(3, at(-125), 0, 0), "outbox 3 queued (oldest 2m05s)"),
        (OutboxStatus(9, at(-7300), 1, 0), "outbox 9 queued (oldest 2h01m), 1 dead letter"),
        (
            OutboxStatus(5, T0, 2, 40),
            "outbox 5 queued (oldest 0m00s), 2 dead letters, 40 MeterValues evicted",
        ),
    ],
    ids=["empty", "minutes", "hours", "everything"],
)
def test_status_summary(status: OutboxStatus, line: str) -> None:
    assert status.summary(T0) == line
