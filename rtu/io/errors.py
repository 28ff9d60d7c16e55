"""Errors of the I/O module driver.

```
IOModuleError                 anything the module could not do for us
 ├── IOModuleUnavailable      no usable answer: connect refused, connection lost,
 │                            timeout, or an answer too garbled to trust
 └── IOModuleFault            the module answered with a Modbus exception response
                              (illegal address, device failure, ...)
```

The split follows what the caller does next. Unavailable is transient: the
driver drops the connection and reconnects on the next call, so supervision
retries with backoff and reports the module offline. A fault is the module
refusing a well-formed request, which usually means the register map does not
match the module: retrying will not help, an operator must look.

These are the only exceptions the driver raises; pymodbus's own types are
translated at the driver boundary (`rtu.io.modbus`) and never leak.
"""

from __future__ import annotations

__all__ = ["IOModuleError", "IOModuleFault", "IOModuleUnavailable"]


class IOModuleError(Exception):
    """Base of the tree: the I/O module did not do what was asked."""

    def __init__(self, module: str, reason: str) -> None:
        super().__init__(f"{module}: {reason}")
        self.module = module  # the endpoint, e.g. "tcp 10.0.0.5:502 unit 1"
        self.reason = reason


# The two leaves are named for what happened, not "...Error": the base already says it.
class IOModuleUnavailable(IOModuleError):
    """No usable answer from the module; the next call reconnects."""


class IOModuleFault(IOModuleError):
    """The module answered with a Modbus exception response."""

    def __init__(
        self, module: str, reason: str, *, function_code: int, exception_code: int
    ) -> None:
        super().__init__(module, reason)
        self.function_code = function_code  # request function code (without the 0x80 error bit)
        self.exception_code = exception_code  # Modbus exception code, e.g. 2 = illegal data address
