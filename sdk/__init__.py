"""payfront merchant SDK: create and read payments, wait for prepay credentials, verify webhooks.

Depends only on httpx and the standard library; nothing here imports the payfront server.
"""

from sdk.async_client import AsyncPayfrontClient
from sdk.client import PayfrontClient
from sdk.errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    ConflictError,
    IdempotencyError,
    InvalidRequestError,
    NotFoundError,
    PayfrontError,
    PayfrontTimeout,
    RateLimitError,
    ServiceUnavailableError,
    SignatureVerificationError,
)
from sdk.models import (
    Balance,
    Credential,
    Event,
    Failure,
    Payment,
    Refund,
    Settlement,
    Token,
    WebhookEndpoint,
)
from sdk.protocol import SDK_VERSION as __version__
from sdk.webhooks import compute_signature, sign_webhook, verify_webhook

__all__ = [
    "APIConnectionError",
    "APIError",
    "AsyncPayfrontClient",
    "AuthenticationError",
    "Balance",
    "ConflictError",
    "Credential",
    "Event",
    "Failure",
    "IdempotencyError",
    "InvalidRequestError",
    "NotFoundError",
    "PayfrontClient",
    "PayfrontError",
    "PayfrontTimeout",
    "Payment",
    "RateLimitError",
    "Refund",
    "ServiceUnavailableError",
    "Settlement",
    "SignatureVerificationError",
    "Token",
    "WebhookEndpoint",
    "__version__",
    "compute_signature",
    "sign_webhook",
    "verify_webhook",
]
