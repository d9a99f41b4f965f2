"""API keys for the service API (``/api/v1``): created, listed, rotated, revoked."""
