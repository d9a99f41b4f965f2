"""The service API (``/api/v1``): other apps' customers on the same ledger."""
