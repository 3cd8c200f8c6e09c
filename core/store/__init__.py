"""SQL store: tables, engine set-up, migrations and compare-and-set helpers."""
