"""Simulators speaking the field devices' real wire protocols, and the rig running them."""
