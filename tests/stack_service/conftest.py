"""Fixtures for the service tests: one real service (uvicorn on 127.0.0.1) per test module over a temporary store."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from stack_service.servicekit import ServiceUnderTest, file_service


@pytest.fixture(scope="module")
def file_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceUnderTest]:
    """One service per test module over a temporary file store and SQLite database."""
    with file_service(tmp_path_factory.mktemp("svc")) as service:
        yield service


@pytest.fixture()
def client(file_stack: ServiceUnderTest) -> Iterator[httpx.Client]:
    """An HTTP client for the module's file-store service."""
    with file_stack.client() as http:
        yield http
