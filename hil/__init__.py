"""Hardware-in-the-loop rig: simulators of the field devices and the runner that wires them up."""
