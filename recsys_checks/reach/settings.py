"""Where the deployment is and how to reach it: targets and credentials from the environment.

Names follow the suite where it has one. Secrets are read from the environment only, are never printed and are
kept out of ``repr`` and ``to_public_dict`` so that they cannot reach a notebook, a log or a run record.
"""

from __future__ import annotations

import functools
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlsplit

from recsys_checks.core import credentials
from recsys_checks.core.errors import BadInput
from recsys_checks.reach.deadline import DEFAULT_DEADLINE

DEFAULT_MANIFEST_TEMPLATE = "s3://recsys-artifacts/registry/current/{tenant}/{surface}/manifest.json"
# Where our audit records of config and rules reverts go when no registry is configured or it cannot be written.
AUDIT_DIR_VARIABLE = "RECSYS_AUDIT_DIR"
_CURRENT_SUFFIX = "/current/{tenant}/{surface}/manifest.json"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CREDENTIAL = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no whitespace: what a key or header value can carry
# The credential variables (the one list: recsys_checks.core.credentials, with RECSYS_SECRET_VARIABLES on top).
SECRET_VARIABLES = credentials.BASE_VARIABLES


def safe_segment(value: str, what: str = "tenant") -> str:
    """Return ``value`` if it is a safe path segment, else raise :class:`BadInput`.

    Safe: trimmed, non-empty, not ``.`` or ``..``, no ``/`` or ``\\``, no control characters. Checked before any
    path or URI is built from it.

    Format twin of ``recsys_stack.formats.safe_segment``:
    kept apart on purpose, so that each side cross-checks the other (tests/twins).
    """
    if value.__class__ is str and value in _SAFE_SEEN:
        return value
    if not isinstance(value, str) or value != value.strip() or value in ("", ".", ".."):
        raise BadInput(f"unsafe {what} {value!r}: use a plain name such as 'demo' (no spaces, '.', '..')")
    if "/" in value or "\\" in value or _CONTROL.search(value):
        raise BadInput(f"unsafe {what} {value!r}: a {what} cannot contain '/', '\\' or control characters")
    if len(_SAFE_SEEN) < _SAFE_SEEN_MAX:
        _SAFE_SEEN.add(value)
    return value


# Names already found safe (the test does not depend on what the name is for), up to a bound.
_SAFE_SEEN: set[str] = set()
_SAFE_SEEN_MAX = 100_000


def split_uri(uri: str) -> tuple[str, str, str]:
    """``(scheme, host or bucket, path)`` of a URI, taken literally.

    The suite uses ``file://`` paths and ``s3://`` keys as written: no percent-decoding, no query or fragment. So do
    we, or a name with ``%2f`` would become a path separator after it was checked, and a name with ``#`` or ``%41``
    that the suite serves would look missing here.
    """
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return "", "", uri
    host, slash, path = rest.partition("/")
    return scheme, host, slash + path


def prove_under(uri: str, root_uri: str, proven: set[str] | None = None) -> str:
    """Return ``uri`` if the file it names stays under ``root_uri`` once both are resolved, else raise BadInput.

    Names are checked before they are put into a path; this proves the result too (a symlink placed in the store,
    or a name the checks missed, cannot lead a write outside the store). Other schemes have no paths to escape.

    Cheaply, as a fleet scan proves two paths per surface: a path that is lexically under the root (no ``.``,
    ``..`` or empty component in either) can only leave it through a symlink below the root, so each directory
    below the root is looked at (one ``lstat``, stopping at the first that does not exist); only when one is a link,
    or the text is not plain, are both sides resolved in full. The root itself may be a link: it is the operator's.

    ``proven``: folders the caller has already found to be no link in this one pass (a fleet scan shares one set, so
    that a tenant's folder is looked at once, not once per surface); folders found so now are added to it.
    """
    base, plain_base = _file_folder(root_uri)
    if uri.startswith("file:///"):
        path = uri[7:]  # what split_uri gives for this plain form, without its general parse
    else:
        scheme, _, path = split_uri(uri)
        if scheme != "file":
            return uri
    if base is None:
        return uri
    if plain_base and path.startswith(base) and _plain(path):
        here = base[:-1]
        for name in path[len(base):].split("/")[:-1]:  # the last component is not followed (see below)
            here += "/" + name
            if proven is not None and here in proven:
                continue
            try:
                if stat.S_ISLNK(os.lstat(here).st_mode):
                    return _prove_resolved(uri, path, base)
            except OSError:  # nothing there (or not a folder): nothing further down, so no link to follow
                return uri
            if proven is not None and len(proven) < PROVEN_MAX:
                proven.add(here)
        return uri
    return _prove_resolved(uri, path, base)


# How many folders one pass remembers as proven: past it, the rest are looked at one by one (memory stays flat).
PROVEN_MAX = 20_000


def prove_folders_in(folder: str, proven: set[str]) -> None:
    """Add to ``proven`` every folder directly in ``folder`` (a plain absolute path) that is no link, from one listing
    (the entries' own types: no ``lstat`` each). Safe whatever ``folder`` is: :func:`prove_under` looks at each
    folder from the root down, so a link above these is found, and resolved, before any of them is trusted."""
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if len(proven) >= PROVEN_MAX:
                    return
                if entry.is_dir(follow_symlinks=False):  # a link is never a folder here
                    proven.add(entry.path)
    except OSError:  # not there, or not readable: each path is then looked at on its own
        return


@functools.lru_cache(maxsize=64)
def _file_folder(root_uri: str) -> tuple[str | None, bool]:
    """The folder (ending with ``/``) a ``file://`` root names: itself, or the folder of a partial name; ``None`` for
    another scheme; and whether it is plain. Computed once per root (a fleet proves every path against the same
    one)."""
    scheme, _, root = split_uri(root_uri)
    if scheme != "file":
        return None, False
    folder = root if root.endswith("/") else os.path.dirname(root) + "/"
    return folder, _plain(folder)


def _plain(path: str) -> bool:
    """An absolute path the kernel reads as the text says: no ``.``, ``..`` or empty component (a name starting with
    a dot is taken for one too, which only costs the full resolution)."""
    return path.startswith("/") and "/." not in path and "//" not in path


def _prove_resolved(uri: str, path: str, base: str) -> str:
    """:func:`prove_under` by resolving the root and every directory of the path (``realpath``)."""
    real_root = os.path.realpath(base)
    # The directories are resolved; a last component that is a symlink is not followed here: a write replaces the
    # link itself, and a read checks what it finds (a device or a FIFO is refused as a damaged object).
    real = os.path.realpath(path) if path.endswith("/") else \
        os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
    if real != real_root and not real.startswith(real_root.rstrip("/") + "/"):
        raise BadInput(f"{uri} resolves to {real}, outside the store root {real_root}: refusing to use it")
    return uri


def credential_problem(value: str | None, variable: str) -> str | None:
    """Why ``value`` cannot be a credential (a stray newline, a space, a non-ASCII character), without showing it.

    Checked before the credential is sent: an HTTP library refusing it would put the value into its error message.
    """
    if value is None or _CREDENTIAL.fullmatch(value):
        return None
    if value != value.strip():
        why = "starts or ends with whitespace or a newline (copied from a file with a trailing newline?)"
    elif _CONTROL.search(value) or " " in value:
        why = "contains whitespace or control characters"
    else:
        why = "contains non-ASCII characters"
    return f"{variable} {why}: set it again to the bare key (its value is not shown)"


@dataclass(frozen=True)
class Target:
    """One deployment: the service's base URL, the manifest template and the store credentials."""

    base_url: str | None = None
    manifest_template: str = DEFAULT_MANIFEST_TEMPLATE
    records_template: str | None = None
    s3_endpoint: str | None = None
    s3_region: str = "us-east-1"
    api_key: str | None = field(default=None, repr=False)
    s3_access_key: str | None = field(default=None, repr=False)
    s3_secret_key: str | None = field(default=None, repr=False)
    timeout: float = 5.0
    deadline: float = DEFAULT_DEADLINE
    max_bytes: int = 10_000_000
    deployment: str | None = None
    protected: bool = False
    # RECSYS_AUDIT_DIR: the local folder for our audit records when the registry is not configured or not writable
    audit_dir: str | None = None
    # Whether a registry was named (a manifest or records template); None: decided from the templates themselves
    registry_configured: bool | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Target:
        """Build a target from ``RECSYS_*`` (and standard AWS) variables; non-None ``overrides`` win."""
        env = os.environ if env is None else env
        values: dict[str, object] = {
            "base_url": env.get("RECSYS_BASE_URL") or None,
            "manifest_template": env.get("RECSYS_ARTIFACT_MANIFEST_TEMPLATE") or DEFAULT_MANIFEST_TEMPLATE,
            "records_template": env.get("RECSYS_ARTIFACT_RECORDS_TEMPLATE") or None,
            "s3_endpoint": env.get("RECSYS_ARTIFACT_S3_ENDPOINT") or env.get("AWS_ENDPOINT_URL_S3") or None,
            "s3_region": env.get("RECSYS_ARTIFACT_S3_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            "api_key": env.get("RECSYS_API_KEY") or None,
            "s3_access_key": env.get("RECSYS_ARTIFACT_S3_ACCESS_KEY") or env.get("AWS_ACCESS_KEY_ID") or None,
            "s3_secret_key": env.get("RECSYS_ARTIFACT_S3_SECRET_KEY") or env.get("AWS_SECRET_ACCESS_KEY") or None,
        }
        if env.get("RECSYS_DEPLOYMENT"):
            values["deployment"] = env["RECSYS_DEPLOYMENT"]
        if env.get("RECSYS_DEPLOYMENT_PROTECTED"):
            values["protected"] = _flag(env["RECSYS_DEPLOYMENT_PROTECTED"], "RECSYS_DEPLOYMENT_PROTECTED")
        if env.get("RECSYS_ARTIFACT_MAX_BYTES"):
            values["max_bytes"] = _positive_int(env["RECSYS_ARTIFACT_MAX_BYTES"], "RECSYS_ARTIFACT_MAX_BYTES")
        if env.get("RECSYS_AUDIT_DIR"):
            values["audit_dir"] = env["RECSYS_AUDIT_DIR"]
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "registry_configured" not in values:
            # The suite's default template is what a reader falls back to, not a place anyone chose to write to.
            values["registry_configured"] = bool(env.get("RECSYS_ARTIFACT_MANIFEST_TEMPLATE")
                                                 or overrides.get("manifest_template") or values["records_template"])
        target = cls(**values)  # type: ignore[arg-type]
        target.validate()
        return target

    def validate(self) -> None:
        for variable, url, example in (("RECSYS_BASE_URL", self.base_url, "http://127.0.0.1:8080"),
                                       ("RECSYS_ARTIFACT_S3_ENDPOINT", self.s3_endpoint, "http://127.0.0.1:9000")):
            if url is not None:
                _check_http_url(variable, url, example)
        for variable, value in (
            ("RECSYS_API_KEY", self.api_key),
            ("RECSYS_ARTIFACT_S3_ACCESS_KEY (or AWS_ACCESS_KEY_ID)", self.s3_access_key),
            ("RECSYS_ARTIFACT_S3_SECRET_KEY (or AWS_SECRET_ACCESS_KEY)", self.s3_secret_key),
        ):
            problem = credential_problem(value, variable)
            if problem:
                raise BadInput(problem)
        if self.deployment is not None and (not self.deployment.strip() or _CONTROL.search(self.deployment)):
            raise BadInput(f"RECSYS_DEPLOYMENT {self.deployment!r} is not a usable name: use e.g. prod-eu")
        if self.protected and not self.deployment:
            raise BadInput("RECSYS_DEPLOYMENT_PROTECTED is set but RECSYS_DEPLOYMENT is not: name the deployment, so "
                           "that --confirm can name it back")
        if self.audit_dir is not None:
            local_audit_dir(self.audit_dir)
        for name, tpl in (("manifest", self.manifest_template), ("records", self.records_template)):
            if tpl is None:
                continue
            if not tpl.startswith(("file://", "s3://")):
                raise BadInput(f"the {name} template {tpl!r} must start with file:// or s3://")
            if "{tenant}" not in tpl or "{surface}" not in tpl:
                raise BadInput(f"the {name} template {tpl!r} must contain {{tenant}} and {{surface}}")

    def require_service(self) -> str:
        if not self.base_url:
            raise BadInput("no service URL: set RECSYS_BASE_URL (e.g. http://127.0.0.1:8080) or pass --base-url")
        return self.base_url.rstrip("/")

    def manifest_uri(self, tenant: str, surface: str, *, proven: set[str] | None = None) -> str:
        """The current manifest's URI of one surface, proven to stay under the store root (``proven``: see
        :func:`prove_under`)."""
        return _fill(self.manifest_template, tenant, surface, proven)

    def records_prefix(self, tenant: str, surface: str, *, proven: set[str] | None = None) -> str:
        """URI prefix under which the version records of one surface live (ends with ``/``).

        Derived from the manifest template by replacing ``/current/{tenant}/{surface}/manifest.json`` with
        ``/records/{tenant}/{surface}/`` unless a records template is given. ``proven``: see :func:`prove_under`.
        """
        safe_segment(tenant, "tenant"), safe_segment(surface, "surface")  # a bad name before a bad template
        uri = _fill(self._records_template, tenant, surface, proven)
        return uri if uri.endswith("/") else uri + "/"

    def prove_surface_folders(self, tenant: str, proven: set[str]) -> None:
        """Add to ``proven`` (see :func:`prove_under`) every surface folder of ``tenant`` that is no link, under the
        manifest and the records templates of a file store, from one listing of each tenant folder: a fleet scan
        then looks at no folder of a surface on its own. Nothing for another scheme or a template of another shape
        (the paths are then proven one by one, as without it)."""
        t = safe_segment(tenant, "tenant")
        try:
            templates = (self.manifest_template, self._records_template)
        except BadInput:
            templates = (self.manifest_template,)
        for template in templates:
            head, sep, _ = template.partition("{surface}")
            folder = head.replace("{tenant}", t)[7:-1]
            if sep and head.startswith("file:///") and head.endswith("/") and "{" not in folder and _plain(folder):
                prove_folders_in(folder, proven)

    @functools.cached_property
    def _records_template(self) -> str:
        # Worked out once per target: a fleet scan asks for every surface's records.
        if self.records_template:
            return self.records_template
        if self.manifest_template.endswith(_CURRENT_SUFFIX):
            return self.manifest_template[: -len(_CURRENT_SUFFIX)] + "/records/{tenant}/{surface}/"
        raise BadInput(
            "cannot derive the records location from the manifest template "
            f"{self.manifest_template!r}: set RECSYS_ARTIFACT_RECORDS_TEMPLATE"
        )

    def registry_root(self) -> str:
        """URI of the registry root (the part of the manifest template before ``/current/``)."""
        if not self.manifest_template.endswith(_CURRENT_SUFFIX):
            raise BadInput(f"the manifest template {self.manifest_template!r} does not end in {_CURRENT_SUFFIX}")
        return self.manifest_template[: -len(_CURRENT_SUFFIX)]

    def audit_root(self) -> str:
        """URI of the registry root under which our audit records go (``<root>/audit/<tenant>/<scope>/``).

        The registry root of the manifest template, else of a records template ending in
        ``/records/{tenant}/{surface}/``; checked before any action changes anything.
        """
        if self.manifest_template.endswith(_CURRENT_SUFFIX):
            return self.manifest_template[: -len(_CURRENT_SUFFIX)]
        records_suffix = "/records/{tenant}/{surface}/"
        if self.records_template and self.records_template.rstrip("/") + "/" == self.records_template and \
                self.records_template.endswith(records_suffix):
            return self.records_template[: -len(records_suffix)]
        raise BadInput(
            "cannot place audit records: neither the manifest template ends in /current/{tenant}/{surface}/"
            "manifest.json nor the records template in /records/{tenant}/{surface}/; use the suite's registry layout"
        )

    @property
    def has_registry(self) -> bool:
        """Whether a registry was configured (``RECSYS_ARTIFACT_MANIFEST_TEMPLATE``, ``--manifest-template`` or a
        records template), rather than the suite's default template standing in for one."""
        if self.registry_configured is not None:
            return self.registry_configured
        return self.manifest_template != DEFAULT_MANIFEST_TEMPLATE or self.records_template is not None

    def secrets(self) -> tuple[str | None, ...]:
        return (self.api_key, self.s3_access_key, self.s3_secret_key)

    def redact(self, text: str) -> str:
        """``text`` with this target's credentials masked (for messages built from third-party exceptions)."""
        return credentials.mask(text, extra=self.secrets())

    def to_public_dict(self) -> dict[str, object]:
        """Everything but the secrets (whether each is set is shown, never its value)."""
        return {
            "base_url": self.base_url,
            "manifest_template": self.manifest_template,
            "records_template": self.records_template,
            "s3_endpoint": self.s3_endpoint,
            "s3_region": self.s3_region,
            "deployment": self.deployment,
            "protected": self.protected,
            "registry_configured": self.has_registry,
            "audit_dir": self.audit_dir,
            "api_key_set": self.api_key is not None,
            "s3_credentials_set": self.s3_access_key is not None and self.s3_secret_key is not None,
        }


def local_audit_dir(text: str, variable: str = AUDIT_DIR_VARIABLE) -> str:
    """The absolute path of a local audit folder given as a path or a ``file://`` URI; BadInput when it cannot be
    one (another scheme, a control character, an existing file that is not a folder)."""
    path = text
    if "://" in text:
        scheme, host, rest = split_uri(text)
        if scheme != "file" or host not in ("", "localhost"):
            raise BadInput(f"{variable} {text!r} is not a local folder: give a path such as ./recsys-audit (the "
                           "registry is set with RECSYS_ARTIFACT_MANIFEST_TEMPLATE)")
        path = rest
    if not path.strip() or _CONTROL.search(path):
        raise BadInput(f"{variable} {text!r} is not a usable folder path: give a path such as ./recsys-audit")
    absolute = os.path.abspath(os.path.expanduser(path))
    if os.path.exists(absolute) and not os.path.isdir(absolute):
        raise BadInput(f"{variable} {text!r} is a file, not a folder: name a folder (it is created if missing)")
    return absolute


def _check_http_url(variable: str, url: str, example: str) -> None:
    """Raise BadInput unless ``url`` is an http(s) URL with a host and, if given, a numeric port."""
    problem = None
    if not re.match(r"^https?://[^/\s]+", url) or _CONTROL.search(url) or " " in url:
        problem = "is not an http(s) URL"
    else:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
            if not parts.hostname:
                problem = "has no host"
        except ValueError as exc:
            problem = f"is not a valid URL ({exc})"
    if problem:
        raise BadInput(f"{variable} {url!r} {problem}: use e.g. {example}")


def _flag(text: str, variable: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise BadInput(f"{variable} {text!r} is not a yes/no value: use true or false")


def _positive_int(text: str, variable: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise BadInput(f"{variable} {text!r} is not a whole number of bytes of at least 1")
    return value


def _fill(template: str, tenant: str, surface: str, proven: set[str] | None = None) -> str:
    """``template`` with the checked tenant and surface put in, proven to stay under the template's fixed part."""
    t, s = safe_segment(tenant, "tenant"), safe_segment(surface, "surface")
    return prove_under(template.replace("{tenant}", t).replace("{surface}", s), _fixed_part(template), proven)


@functools.lru_cache(maxsize=64)
def _fixed_part(template: str) -> str:
    """What comes before the template's first placeholder: the root its filled-in URIs must stay under."""
    return template.split("{", 1)[0]


MAX_DURATION = timedelta(days=36500)  # far beyond any history, and well inside what a date can express
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """Parse ``90s``, ``15m``, ``26h`` or ``7d`` into a timedelta; anything else is :class:`BadInput`."""
    m = _DURATION.match(str(text))
    if not m:
        raise BadInput(f"bad duration {text!r}: use a number and a unit s, m, h or d, e.g. 26h or 7d")
    seconds = float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
    if seconds <= 0:
        raise BadInput(f"bad duration {text!r}: it must be greater than zero")
    if seconds > MAX_DURATION.total_seconds():
        raise BadInput(f"bad duration {text!r}: it must be at most {MAX_DURATION.days}d (100 years)")
    return timedelta(seconds=seconds)
