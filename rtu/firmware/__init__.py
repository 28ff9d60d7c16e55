"""The station's firmware agent (OS³P §7.13 UpdateFirmware, §6.3 FirmwareStatusNotification).

- `state`:    the pure state machine (transition table) and its JSON form
- `store`:    `firmware.db`, the persisted state and the statuses still to emit
- `releases`: the release directories and the atomic `current` switch
- `rollback`: the pre-start check systemd runs (ExecStartPre), stdlib only
- `download`, `install`, `agent`, `config`: the daemon side

Unlike other packages this one re-exports nothing: `rollback` runs before the
daemon, possibly next to a release that cannot even import, so importing
`rtu.firmware` must not pull in aiohttp, msgspec or the daemon.
"""

__all__: list[str] = []
