"""payfront's domain: orders, state machines, store, outbox. No web framework, no channel."""
