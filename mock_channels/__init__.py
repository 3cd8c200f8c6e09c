"""The channel sandbox: emulators of the payment channels' APIs, signatures and callbacks.

It shares no protocol code with ``channels`` (only ``cryptography``), so that a signing mistake
cannot hide by being made twice; the third-party clients in ``tests/interop`` keep both honest.
"""
