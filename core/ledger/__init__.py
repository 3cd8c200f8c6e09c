"""Double-entry fund accounting: one balanced journal entry per money-moving event, posted
asynchronously and idempotently (docs/ledger.md). Modules: ``fees`` (channel fee arithmetic),
``accounts`` (the chart of accounts, hot flags), ``entries`` (posting schemes and the
balancing rule), ``posting`` (writing entries), ``hot`` (the hot-account buffer and its fold),
``balances`` (balance reads, balances from lines), ``terms`` (settlement days, delays and
keys), ``settle`` (settlement runs: pending → available) and ``settlement`` (the per-day
view)."""
