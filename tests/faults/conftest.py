"""The fault suite's summary table: each case reports into `fault_table`, printed at the end."""

from __future__ import annotations

import pytest

from tests.faults.support import FaultTable

_TABLE = pytest.StashKey[FaultTable]()


@pytest.fixture(scope="session")
def fault_table(request: pytest.FixtureRequest) -> FaultTable:
    """The run's table (kept in the config's stash, where the summary hook finds it)."""
    stash = request.config.stash
    if _TABLE not in stash:
        stash[_TABLE] = FaultTable()
    return stash[_TABLE]


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    table = config.stash.get(_TABLE, None)
    if table is None or not table.rows:
        return
    terminalreporter.section("fault suite: events sent vs stored by the central")
    for line in table.render():
        terminalreporter.write_line(line)
