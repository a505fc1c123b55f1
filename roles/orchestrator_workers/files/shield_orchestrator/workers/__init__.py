"""The worker pool package: ``python -m shield_orchestrator.workers``."""
