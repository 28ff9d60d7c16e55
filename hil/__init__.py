"""Simulators of the field devices, speaking the real wire protocols, and the rig that runs them."""
