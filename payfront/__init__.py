"""The ``payfront`` command: gateway, worker, sandbox, dev, migrate."""
