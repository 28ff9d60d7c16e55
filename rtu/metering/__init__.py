"""Meter sources (DLMS, P1, station analyser) and the samples they produce."""
