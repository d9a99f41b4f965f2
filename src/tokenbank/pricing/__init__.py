"""Prices: the versioned price book (per-reply and usage prices per model, feature prices).

A leaf domain like the ledger: it imports no other domain, so the chat's charge path and
the host app's metered features can both read the current book.
"""
