"""Runners that drive the same party coroutines in memory, in the simulator and over TCP."""
