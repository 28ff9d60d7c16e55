"""The central system: the operator's side of OS³P (docs/central.md).

`service.CentralService` runs it all; `server` is the websocket endpoint, `handlers`
the 8 station-initiated actions, `commands` the 13 central-initiated ones, `api` the
operator's HTTP API, `cli` the `os3p-central` command, `storage` the database. This
package root imports nothing, so `os3p-central` starts without loading the server.
"""
