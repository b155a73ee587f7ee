"""Test-only: loaded by every Python process of a crash trial (PYTHONPATH), it kills the process at one point of a
fix when CRASH_POINT says so (see tests/crashkit.py). Only the runbook's kernel writes to the store and calls the
service's cache invalidation, so only the kernel is killed."""

import os

if os.environ.get("CRASH_POINT"):
    import crashkit

    crashkit.arm_from_env()
