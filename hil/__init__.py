"""Hardware-in-the-loop rig: simulators of the field devices and the runner that wires them up.

Each simulator speaks the real wire protocol (Modbus, DLMS/COSEM, DSMR P1), so the
daemon talks to it exactly as it talks to hardware; only its configuration differs.
"""
