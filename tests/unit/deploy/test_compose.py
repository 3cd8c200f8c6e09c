"""The production-style compose file: every service has a health check, runs a real payfront
command, and sets only settings payfront has. (No Docker engine runs here, so this checks
the file, not a running cluster; tests/e2e/test_scale_out.py runs the same layout as
processes.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from core.settings import Settings
from payfront.cli import COMMANDS

COMPOSE = Path(__file__).resolve().parents[3] / "deploy" / "compose.yaml"


def _services() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text())["services"])


def test_every_long_running_service_has_a_health_check() -> None:
    for name, service in _services().items():
        if name == "migrate":
            continue  # a one-shot job: the others wait for it to complete
        check = service.get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), name


def test_payfront_services_run_payfront_commands_with_known_settings() -> None:
    fields = {f"PAYFRONT_{name.upper()}" for name in Settings.model_fields}
    payfront_services = {
        name: service for name, service in _services().items() if "build" in service
    }
    assert {"gateway-1", "gateway-2", "worker-1", "worker-2", "sandbox", "migrate"} <= set(
        payfront_services
    )
    for name, service in payfront_services.items():
        assert service["command"][0] in COMMANDS, name
        unknown = {key for key in service["environment"] if key not in fields}
        assert not unknown, (name, unknown)


def test_gateways_and_workers_wait_for_healthy_stores_and_migrations() -> None:
    services = _services()
    for name in ("gateway-1", "gateway-2", "worker-1", "worker-2"):
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"
        assert depends["migrate"]["condition"] == "service_completed_successfully"
