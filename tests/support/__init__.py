"""Test support: real servers on loopback, process helpers."""
