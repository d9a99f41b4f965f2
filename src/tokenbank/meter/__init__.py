"""Metering: the host app's other features (a text-to-speech clip, an image...) priced in
tokens and charged to a signed-in user through the ledger's holds and charges."""
