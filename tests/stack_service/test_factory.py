"""The documented start command: uvicorn --factory recsys_stack.service.app:create_app, configured by env only."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import closing

import httpx
import pytest
from stack_service.servicekit import API_KEY, FileWriter, ServiceUnderTest, file_settings

from recsys_stack.service.adminstore import AdminStore

pytestmark = pytest.mark.stack


def free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_factory_command_serves_with_settings_from_the_environment(tmp_path):
    """Started like the stack starts it, the service reads RECSYS_* env, becomes ready and serves the file store."""
    settings = file_settings(tmp_path)
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("RECSYS_", "AWS_"))},
        "RECSYS_ARTIFACT_MODE_ENABLED": "true",
        "RECSYS_ARTIFACT_MANIFEST_TEMPLATE": settings.manifest_template,
        "RECSYS_ARTIFACT_MANIFEST_TTL": "10m",
        "RECSYS_ARTIFACT_CACHE_TTL": "600s",
        "RECSYS_ARTIFACT_MAX_BYTES": "1000000",
        "RECSYS_API_KEY": API_KEY,
        "RECSYS_STACK_DB": str(settings.db_path),
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "recsys_stack.service.app:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base_url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base_url, timeout=5) as http:
            deadline = time.monotonic() + 20
            while True:
                try:
                    if http.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert process.poll() is None, process.stdout.read().decode() if process.stdout else "exited"
                assert time.monotonic() < deadline, "service did not become ready in 20 s"
                time.sleep(0.1)
            service = ServiceUnderTest(base_url, settings, FileWriter(tmp_path / "store"), AdminStore(settings.db_path))
            tenant = service.new_tenant()
            service.publish(tenant, "home", [("sku-0001", 2)])
            response = service.recommend(http, tenant)
            assert response.json()["items"] == [{"item_id": "sku-0001", "rank": 1, "score": 2}]
            admin = http.get(f"/v1/admin/tenants/{tenant}/audit", headers=service.admin_headers())
            assert admin.status_code == 200
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()
