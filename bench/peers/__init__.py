"""Peer queues for the overhead benchmark; each script runs inside its own bench venv."""
