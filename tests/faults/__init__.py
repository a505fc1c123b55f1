"""Fault-injection tests (issue 9): kills, restarts, outages, poison; counts, never time."""
