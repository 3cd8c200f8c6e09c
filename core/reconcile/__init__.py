"""Reconciliation: channel statements stored as downloaded, matched against pay and refund
orders day by day, and the differences kept for review with what was fixed automatically
(docs/reconciliation.md)."""
