"""Service configuration, read from the environment with the suite's variable names."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_MANIFEST_TEMPLATE = "s3://recsys-artifacts/registry/current/{tenant}/{surface}/manifest.json"
DEFAULT_DB = ".stack/admin.db"

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def parse_duration(text: str, name: str = "duration") -> float:
    """Parse a Go-style duration (``"1m"``, ``"30s"``, ``"1h30m"``, ``"500ms"``; a bare number is seconds)."""
    value = text.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if seconds < 0:
            raise ValueError(f"{name}={text!r} is negative: use a duration such as 60s or 1m")
        return seconds
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(value):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos != len(value) or not value:
        raise ValueError(f"{name}={text!r} is not a duration: use Go syntax such as 600s, 1m or 1h30m")
    return total


def _parse_bool(text: str, name: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name}={text!r} is not a boolean: use true or false")


@dataclass(frozen=True)
class Settings:
    """Everything the service needs; secrets are kept out of ``repr``."""

    db_path: Path = Path(DEFAULT_DB)
    api_key: str | None = field(default=None, repr=False)
    artifact_mode_enabled: bool = True
    manifest_template: str = DEFAULT_MANIFEST_TEMPLATE
    manifest_ttl_seconds: float = 60.0
    cache_ttl_seconds: float = 60.0
    max_bytes: int = 10_000_000
    s3_endpoint: str | None = None
    s3_access_key: str | None = field(default=None, repr=False)
    s3_secret_key: str | None = field(default=None, repr=False)
    s3_region: str = "us-east-1"
    s3_use_ssl: bool = True
    # Short, so that an unreachable store is a fast 500 rather than a hung request.
    s3_connect_timeout: float = 2.0
    s3_read_timeout: float = 5.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``env`` (default ``os.environ``); a malformed value raises ValueError naming it."""
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name)
            return value if value not in (None, "") else None

        kwargs: dict[str, object] = {}
        if (db := get("RECSYS_STACK_DB")) is not None:
            kwargs["db_path"] = Path(db)
        kwargs["api_key"] = get("RECSYS_API_KEY")
        if (mode := get("RECSYS_ARTIFACT_MODE_ENABLED")) is not None:
            kwargs["artifact_mode_enabled"] = _parse_bool(mode, "RECSYS_ARTIFACT_MODE_ENABLED")
        if (template := get("RECSYS_ARTIFACT_MANIFEST_TEMPLATE")) is not None:
            kwargs["manifest_template"] = template
        if (ttl := get("RECSYS_ARTIFACT_MANIFEST_TTL")) is not None:
            kwargs["manifest_ttl_seconds"] = parse_duration(ttl, "RECSYS_ARTIFACT_MANIFEST_TTL")
        if (ttl := get("RECSYS_ARTIFACT_CACHE_TTL")) is not None:
            kwargs["cache_ttl_seconds"] = parse_duration(ttl, "RECSYS_ARTIFACT_CACHE_TTL")
        if (max_bytes := get("RECSYS_ARTIFACT_MAX_BYTES")) is not None:
            try:
                kwargs["max_bytes"] = int(max_bytes)
            except ValueError:
                raise ValueError(
                    f"RECSYS_ARTIFACT_MAX_BYTES={max_bytes!r} is not an integer: use a byte count such as 10000000"
                ) from None
            if kwargs["max_bytes"] <= 0:  # type: ignore[operator]
                raise ValueError(f"RECSYS_ARTIFACT_MAX_BYTES={max_bytes!r} must be positive")
        kwargs["s3_endpoint"] = get("RECSYS_ARTIFACT_S3_ENDPOINT")
        kwargs["s3_access_key"] = get("RECSYS_ARTIFACT_S3_ACCESS_KEY")
        kwargs["s3_secret_key"] = get("RECSYS_ARTIFACT_S3_SECRET_KEY")
        if (region := get("RECSYS_ARTIFACT_S3_REGION")) is not None:
            kwargs["s3_region"] = region
        if (use_ssl := get("RECSYS_ARTIFACT_S3_USE_SSL")) is not None:
            kwargs["s3_use_ssl"] = _parse_bool(use_ssl, "RECSYS_ARTIFACT_S3_USE_SSL")
        return cls(**kwargs)  # type: ignore[arg-type]
