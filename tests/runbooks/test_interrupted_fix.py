"""A fix interrupted between its change and its cache invalidation (a crash), then the runbook run again.

The revert landed but the service still ranks with the cached bad document. The re-run must see a stale cache and
finish the interrupted fix (invalidate it), never revert the current good document a second time.
"""

from __future__ import annotations

import httpx
import pytest
from checks_integration.checkskit import Checks

from handbook_site import drills


@pytest.mark.stack
@pytest.mark.slow
def test_a_rerun_after_a_crash_finishes_the_invalidation_and_reverts_nothing(tmp_path, fresh_stack):
    with fresh_stack("file") as stack:
        checks = Checks(stack)
        env = drills.client_env(stack.env)
        good = checks.admin("GET", "/v1/admin/tenants/demo/rules", "demo").json()
        good_version = good["rules_version"]
        drills.inject(stack.root, "bad-rules")
        # The revert, as the crashed run made it: the document PUT back, the cache invalidation never sent.
        headers = {"X-API-Key": stack.api_key, "X-Org-Id": "demo", "X-Actor": "crashed-run"}
        body = {"surface": "home", "k": 10, "user": {"user_id": "u"}}
        with httpx.Client(base_url=stack.base_url, timeout=15.0, trust_env=False) as client:
            assert client.post("/v1/recommend", json=body, headers=headers).json()["items"] == []  # bad rules cached
            current = client.get("/v1/admin/tenants/demo/rules", headers=headers)
            put = client.put("/v1/admin/tenants/demo/rules", json=good["rules"],
                             headers={**headers, "If-Match": current.headers["ETag"].strip('"')})
            assert put.status_code == 200 and put.json()["rules_version"] == good_version
            served = client.post("/v1/recommend", json=body, headers=headers).json()
        assert served["items"] == [] and served["meta"]["rules_version"] != good_version  # still the cached bad one

        outcome = drills.run_runbook("rollback-config-rules", {"tenant": "demo", "surface": "home"}, env,
                                     tmp_path / "rerun", execute=True, phase="rerun")
        assert outcome.cause == "document_cache_stale" and outcome.verdict == "mitigated", outcome.describe()
        assert [c["action"] for c in outcome.record["changed"]] == ["cache.invalidate"]
        assert checks.admin("GET", "/v1/admin/tenants/demo/rules", "demo").json()["rules_version"] == good_version
