"""Handlers of the central-initiated actions, one module per subsystem."""
