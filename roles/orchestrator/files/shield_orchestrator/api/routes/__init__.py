"""api.routes package."""
