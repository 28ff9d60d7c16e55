"""The substation RTU daemon."""
