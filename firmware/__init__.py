"""Update bundles for the RTU: build, sign (Ed25519) and verify.

A bundle carries the daemon's wheels and a signed manifest; the station's
firmware agent (`rtu.firmware`) verifies it against the public keys in its
configuration before installing it into a new release directory.
"""
