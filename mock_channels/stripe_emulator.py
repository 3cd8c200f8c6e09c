"""The Stripe emulator: mounts its API routes (``/v1``) and its sandbox admin API
(``/sandbox/stripe``) on the sandbox app and ties its state to the app's lifetime.

Unlike stripe-mock (Stripe's own mock, stateless and without webhooks), it keeps state:
PaymentIntents move through Stripe's life cycle, idempotency keys replay first answers, and
events are signed and delivered to each account's webhook URL with Stripe's retries.

Emulated: PaymentIntents create / retrieve / confirm / cancel, charges (retrieve), refunds
(create / retrieve / list, settling later for Stripe's refund test cards), balance transactions
(list / retrieve, with fees), events (retrieve), API-key auth, Stripe's idempotency rules,
form-encoded bracket parameters, Stripe-shaped errors, signed webhooks with secret rotation.
Not emulated: Connect, customers and saved payment methods, 3-D Secure (``requires_action``),
manual capture, lists other than refunds and balance transactions, search, updates of an
intent or a refund, refunds needing the shopper's action, payouts, webhook endpoint objects,
and test-mode's shorter retry schedule (live mode's three days are played, time-scaled).

Accounts persist in ``state_dir/stripe``; objects, events and keys are kept in memory.
"""

from __future__ import annotations

import random

from aiohttp import web

from mock_channels.common import install_emulator
from mock_channels.config import SandboxConfig
from mock_channels.stripe_admin import build_admin_app
from mock_channels.stripe_api import build_v1_app
from mock_channels.stripe_sandbox import STRIPE_SANDBOX, StripeSandbox

V1_PREFIX = "/v1"
ADMIN_PREFIX = "/sandbox/stripe"


def setup_stripe(app: web.Application, config: SandboxConfig, rng: random.Random) -> None:
    """Add the Stripe emulator to ``app`` (whose ``HTTP_SESSION`` must be set up first)."""
    install_emulator(app, STRIPE_SANDBOX, StripeSandbox(config, rng))
    app.add_subapp(V1_PREFIX, build_v1_app())
    app.add_subapp(ADMIN_PREFIX, build_admin_app())
