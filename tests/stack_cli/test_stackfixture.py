"""The shared `stack` fixture gives what recsys-checks needs to reach the stack, as production would."""

from __future__ import annotations

import httpx
import pytest
from stackfixture import StackHandle

from recsys_checks.reach.settings import Target


@pytest.mark.stack
def test_stack_fixture_env_configures_a_checks_target(stack: StackHandle) -> None:
    """handle.env builds a recsys_checks Target that reaches the service and names every manifest."""
    target = Target.from_env(stack.env)
    assert target.base_url == stack.base_url and target.api_key == stack.api_key
    assert target.manifest_uri("demo", "home") == stack.info["manifest_template"].format(tenant="demo", surface="home")
    if stack.info["store"] == "s3":
        assert target.s3_endpoint == stack.info["s3_endpoint"] and target.s3_access_key and target.s3_secret_key
    assert "RECSYS_API_KEY" not in repr(target) and stack.api_key not in repr(stack)
    with httpx.Client(timeout=5.0, trust_env=False) as client:
        assert client.get(f"{target.require_service()}/readyz").status_code == 200
