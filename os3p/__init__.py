"""OS³P 0.4, JSON over websockets: the protocol both the station and the central speak.

The pure core (`frames`, `validation`, `session`, `router`, `messages`) does no
I/O; `connection`, `client` and `server` are the asyncio shell over `websockets`.
"""
