"""The central system: the operator's side of OS³P."""
