"""The shapes of the lines the suite's `recsys-pipelines` prints when a run fails, written down from its real output
and kept apart from the classifier, so that a stand-in fault cannot pass a drill on a format of its own.

:func:`suite_family` names the family a failure's last line(s) belong to, or ``None`` when the suite prints nothing
of that shape.
"""

from __future__ import annotations

import re

_STAGE = re.compile(r"^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} INFO [a-z_]+: (start|done)\b.*$")
FAMILIES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("event limit", re.compile(r"run failed: event limit exceeded: \d+ > \d+")),
    ("validator limit", re.compile(r"run failed: validation_failed: (canonical event count|distinct item count|"
                                   r"distinct session count|popularity items|cooc rows|cooc neighbors) exceeds max: "
                                   r"validation_failed\n(item=\S+ )?\w+=\d+ max=\d+")),
    ("compute limit", re.compile(r"run failed: limit_exceeded: (items per session|session|distinct item) limit "
                                 r"exceeded: \d+ >= \d+: limit_exceeded")),
    ("validator check", re.compile(r"run failed: validation_failed: (\w+ )?(version hash|artifact version|artifact_type) "
                                   r"mismatch: validation_failed\n\S+=\S+( \S+=\S+)?")),
    ("validator minimum", re.compile(r"run failed: validation_failed: canonical event count below min: "
                                     r"validation_failed\nevents=\d+ min=\d+")),
    ("dependency", re.compile(r"run failed: dependency: [a-z ]+: dependency\n.+")),
    ("bad event", re.compile(r"run failed: invalid exposure event: (\w+ must be set|rank must be >= 0|"
                             r"unsupported version: \d+)")),
    ("configuration", re.compile(r"run failed: (segment must be set|endDay must be >= startDay|backfill exceeds max "
                                 r"days: \d+ > \d+)")),
    ("os error", re.compile(r"run failed: (mkdir|open|read|write|rename|stat) \S+: [a-z ]+")),
    ("checkpoint", re.compile(r"checkpoint missing; provide --start for first run|checkpoint error: .+")),
    # More real runs (December 2026): setup errors (exit 2, no stage line), the optional stages' limits, bare
    # dependency errors, a line the decoder cannot read, a backfill over its limit after its first days.
    ("setup", re.compile(r"(config|object store|raw source|signal store|catalog) error: .+|invalid (start|end): .+|"
                         r"missing required flags|unknown command: .*")),
    ("optional stage limit", re.compile(r"run failed: limit_exceeded: (distinct user|items per user) limit exceeded: "
                                        r"\d+ >= \d+: limit_exceeded|run failed: limit_exceeded: catalog item limit "
                                        r"exceeded: \d+ > \d+: limit_exceeded")),
    ("object store refused", re.compile(r'run failed: (Get|Put|Head) "https?://[^"]+": dial tcp \S+: connect: '
                                        r"connection refused")),
    ("signal database refused", re.compile(r"run failed: failed to connect to `user=\S+ database=\S+`: \S+ "
                                           r"\(\S+\): dial error: dial tcp \S+: connect: connection refused")),
    ("store not writable", re.compile(r"run failed: open \S+: permission denied")),
    ("bad raw line", re.compile(r"run failed: decode exposure jsonl: .+")),
    ("torn document", re.compile(r"run failed: unexpected end of JSON input")),
)
_SETUP_START = re.compile(FAMILIES[-7][1].pattern)


def failure_text(log: str) -> str:
    """The failure of a printed log: from its last `run failed:` line to the end, stage lines checked on the way."""
    lines = log.rstrip("\n").split("\n")
    start = max(i for i, line in enumerate(lines) if line.startswith(("run failed:", "checkpoint "))
                or _SETUP_START.fullmatch(line))
    for line in lines[:start]:
        assert _STAGE.match(line), f"not a stage line of the suite's logger: {line!r}"
    return "\n".join(lines[start:])


def suite_family(log: str) -> str | None:
    text = failure_text(log)
    return next((name for name, pattern in FAMILIES if pattern.fullmatch(text)), None)
