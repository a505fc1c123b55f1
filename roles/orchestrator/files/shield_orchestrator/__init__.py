"""shield_orchestrator: asynchronous LightRAG ingestion (API, worker pool, job tracker).

Rendered by the Ansible roles; see ARCHITECTURE.md in the repository for the map.
"""
