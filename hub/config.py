"""Settings: ``hub.toml`` (the hub) and ``agencies.toml`` (the directory), with env overrides.

Every key can be overridden by an environment variable:

* ``hub.toml``: ``LIENTHONG_<SECTION>_<KEY>``, e.g. ``LIENTHONG_DATABASE_URL``,
  ``LIENTHONG_HUB_LISTEN``, ``LIENTHONG_LIMITS_MAX_BODY_BYTES``,
  ``LIENTHONG_VALIDATION_CODE_NUMBER_LENGTH``;
* ``agencies.toml``: ``LIENTHONG_AGENCY_<CODE>_<KEY>`` with the code's dots written as
  underscores, e.g. ``LIENTHONG_AGENCY_000_00_31_H26_DELIVERY=push``.

Relative paths are resolved against the directory of the file that names them. Anything wrong
stops start-up with a :class:`ConfigError` that names the file, the key and the problem.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import shutil
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hub.edxml.model import Priority
from hub.edxml.schema import ACTIONS, ValidationPolicy
from hub.errors import ConfigError
from hub.routing import pattern_problem

AGENCY_CODE = re.compile(r"^\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2}$")
# Identities that never appear in packages (auditors, operators) need not be QCVN 102 codes.
ACCOUNT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$")

Role = Literal["agency", "auditor", "admin", "hub"]
# "peer": the agency is served by another hub and reached through it (an agency listed with
# ``via``); never written in agencies.toml, which configures only pull or push.
DeliveryMode = Literal["pull", "push", "peer"]
ROLES: tuple[Role, ...] = ("agency", "auditor", "admin", "hub")
DELIVERY_MODES: tuple[DeliveryMode, ...] = ("pull", "push")

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")

DEFAULT_CONFIG = Path("config/hub.toml")
# The variable holding the hub key's passphrase (PKCS#12, encrypted PEM); never a file.
PASSPHRASE_ENV = "LIENTHONG_HUB_KEY_PASSPHRASE"  # noqa: S105 - a variable name, not a secret


def is_pkcs12(path: Path) -> bool:
    return path.suffix.lower() in (".p12", ".pfx")


@dataclass(frozen=True)
class DeliverySettings:
    """``[delivery]``: how the hub hands packages out, and the default retry limits for push.

    Per agency, ``max_attempts`` and ``max_age_seconds`` in ``agencies.toml`` override the two
    retry limits (a commune's office PC that sleeps at night needs a longer max age than a
    ministry's data centre).
    """

    expire_after_seconds: int = 7 * 86400  # unacknowledged for this long: expired (0: never)
    push_timeout_seconds: int = 30  # one push attempt, connect to last byte of the answer
    max_attempts: int = 12
    max_age_seconds: int = 86400
    retry_base_ms: int = 2000  # first back-off ceiling; doubles per attempt
    retry_max_delay_seconds: int = 3600  # back-off ceiling


# Acknowledgement windows by priority (Decision 28/2018): the defaults, and their keys in
# ``[deadlines]``.
DEFAULT_ACK_HOURS = {
    Priority.FLASH_TIMED: 2.0,
    Priority.FLASH: 2.0,
    Priority.VERY_URGENT: 8.0,
    Priority.URGENT: 24.0,
    Priority.NORMAL: 72.0,
}
ACK_KEYS = {
    Priority.FLASH_TIMED: "ack_hours_hoa_toc_hen_gio",
    Priority.FLASH: "ack_hours_hoa_toc",
    Priority.VERY_URGENT: "ack_hours_thuong_khan",
    Priority.URGENT: "ack_hours_khan",
    Priority.NORMAL: "ack_hours_thuong",
}


def _default_windows() -> dict[int, dt.timedelta]:
    return {int(p): dt.timedelta(hours=h) for p, h in DEFAULT_ACK_HOURS.items()}


@dataclass(frozen=True)
class DeadlineSettings:
    """``[deadlines]``: how long a recipient has to acknowledge a document, by priority, and how
    often the hub looks for overdue documents (``hub.deadlines``; 0: never)."""

    windows: Mapping[int, dt.timedelta] = field(default_factory=_default_windows)
    check_seconds: int = 300


@dataclass(frozen=True)
class AlertSettings:
    """``[alerts]``: where the hub forwards its alerts besides the trace and the log
    (``hub.alerts``): a webhook URL, a command (argv, no shell), or both; neither by default."""

    webhook: str = field(default="", repr=False)  # its query string may carry a token
    command: tuple[str, ...] = ()
    timeout_seconds: int = 10

    @property
    def enabled(self) -> bool:
        return bool(self.webhook or self.command)


@dataclass(frozen=True)
class ConsoleSettings:
    """``[console]``: the web console's sign-in (hub.console)."""

    session_seconds: int = 8 * 3600  # a signed-in session ends this long after sign-in
    login_attempts: int = 10  # failed sign-ins allowed per client address …
    login_window_seconds: int = 300  # … within this many seconds; then 429 until it passes


@dataclass(frozen=True)
class AgencyConfig:
    code: str
    name: str
    role: Role = "agency"
    parent: str = ""
    delivery: DeliveryMode = "pull"
    push_url: str = ""
    credential_sha256: str = ""  # hex SHA-256 of the credential the hub issued
    certificates: tuple[bytes, ...] = ()  # PEM, one or more (rotation with overlap)
    legacy_sha1: bool = False  # accept (weak) SHA-1 signatures from this agency, marked in traces
    read_bodies: bool = False  # an auditor who may also download package bodies, not only traces
    max_attempts: int | None = None  # push retry limits; None: the [delivery] default
    max_age_seconds: int | None = None
    # Federation. An agency served by a peer hub names that hub's account here (``via``); a hub
    # account lists the code patterns it may speak for (``serves``, hub.routing).
    via: str = ""
    serves: tuple[str, ...] = ()


@dataclass(frozen=True)
class PeerConfig:
    """``[[peer]]`` in hub.toml: a peer hub this hub forwards to (DESIGN §6).

    ``name`` is the peer's account in this hub's directory (``role = "hub"``) when the peer
    also sends to this hub (statuses coming back, documents for local agencies); agencies listed
    with ``via = name`` are reached through it. ``credential`` is this hub's credential *at the
    peer*, read from a file or an environment variable, never written in hub.toml.
    """

    name: str
    url: str
    credential: str = field(repr=False)
    routes: tuple[str, ...] = ()
    default: bool = False


@dataclass(frozen=True)
class GroupConfig:
    """A group address (``[[group]]`` in agencies.toml): one code that stands for many agencies.

    Members are the agencies named or matched by ``members`` (codes, or patterns with ``*`` and
    ``?``) plus the direct subordinates of every unit in ``children_of``.
    """

    code: str
    name: str
    members: tuple[str, ...] = ()
    children_of: tuple[str, ...] = ()


@dataclass(frozen=True)
class Settings:
    hub_id: str
    listen_host: str
    listen_port: int
    database_url: str
    max_body_bytes: int
    hub_key_path: Path
    hub_cert_path: Path | None  # None: the certificate is in the PKCS#12 file hub_key_path
    trust_anchor_paths: tuple[Path, ...]
    agencies_path: Path
    agencies: tuple[AgencyConfig, ...]
    config_path: Path
    groups: tuple[GroupConfig, ...] = ()
    validation: ValidationPolicy = field(default_factory=ValidationPolicy)
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    trust_intermediate_paths: tuple[Path, ...] = ()
    crl_sources: tuple[str, ...] = ()  # file paths (resolved) or http(s) URLs
    require_revocation: bool = True
    crl_refresh_seconds: int = 3600
    crl_grace_seconds: int = 86400
    checkpoint_seconds: int = 300  # how often the hub signs the audit chain's head
    # From $LIENTHONG_HUB_KEY_PASSPHRASE; never in a file, never shown (repr=False).
    hub_key_passphrase: bytes | None = field(default=None, repr=False)
    peers: tuple[PeerConfig, ...] = ()
    console: ConsoleSettings = field(default_factory=ConsoleSettings)
    deadlines: DeadlineSettings = field(default_factory=DeadlineSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    # Retention (hub.retention): documents older than this many days may be archived and purged
    # by `lienthong retention purge`; 0 keeps everything forever.
    retention_days: int = 0
    retention_archive_dir: Path | None = None  # where their evidence bundles go first
    # [facade] enabled: also serve the national axis SDK's verbs under /vxp (hub.facade).
    facade_enabled: bool = False
    # [logging]: how `lienthong serve` writes its log (standard error).
    log_format: LogFormat = "text"
    log_level: str = "warning"
    # [metrics]: the bearer token scrapers must send to /metrics, from a file or an
    # environment variable (never hub.toml); None: /metrics answers loopback callers only.
    metrics_token: str | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://{self.listen_host}:{self.listen_port}"


def credential_digest(token: str) -> str:
    """What the hub stores for a credential.

    Credentials are 256-bit random tokens issued by the hub, so a plain SHA-256 is as strong as a
    slow password hash here (there is nothing to guess) and costs nothing on the request path.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class _Reader:
    """Typed access to one TOML table that reports errors with file and key."""

    def __init__(self, file: Path, prefix: str, table: Mapping[str, Any], env: Mapping[str, str]):
        self.file, self.prefix, self.table, self.env = file, prefix, table, env

    def _raw(self, key: str, env_name: str) -> tuple[Any, bool]:
        if env_name in self.env:
            return self.env[env_name], True
        return self.table.get(key), False

    def _fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(str(self.file), f"{self.prefix}{key}", problem)

    def string(self, key: str, env_name: str, default: str | None = None) -> str:
        value, _ = self._raw(key, env_name)
        if value is None:
            if default is None:
                raise self._fail(key, "is required")
            return default
        if not isinstance(value, str):
            raise self._fail(key, f"must be a string, not {type(value).__name__}")
        return value

    def integer(self, key: str, env_name: str, default: int, minimum: int = 0) -> int:
        value, from_env = self._raw(key, env_name)
        if value is None:
            return default
        if from_env:
            try:
                value = int(str(value).replace("_", ""))
            except ValueError:
                raise self._fail(key, f"{env_name}={value!r} is not a whole number") from None
        if not isinstance(value, int) or isinstance(value, bool):
            raise self._fail(key, f"must be a whole number, not {value!r}")
        if value < minimum:
            raise self._fail(key, f"must be at least {minimum}, not {value}")
        return value

    def choice(self, key: str, env_name: str, default: str, allowed: tuple[str, ...]) -> str:
        value, from_env = self._raw(key, env_name)
        if value is None:
            return default
        if not isinstance(value, str) or value not in allowed:
            shown = f"{env_name}={value!r}" if from_env else repr(value)
            raise self._fail(key, f"{shown} is not one of {', '.join(map(repr, allowed))}")
        return value

    def strings(self, key: str, env_name: str) -> tuple[str, ...]:
        value, from_env = self._raw(key, env_name)
        if value is None:
            return ()
        if from_env:
            return tuple(part for part in str(value).split(os.pathsep) if part)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._fail(key, "must be a list of strings")
        return tuple(value)

    def boolean(self, key: str, env_name: str, default: bool) -> bool:
        value, from_env = self._raw(key, env_name)
        if value is None:
            return default
        if from_env:
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise self._fail(key, f"{env_name}={value!r} is not true or false")
        if not isinstance(value, bool):
            raise self._fail(key, f"must be true or false, not {value!r}")
        return value

    def path(self, key: str, env_name: str, default: str | None = None) -> Path:
        return _resolve(self.file, self.string(key, env_name, default))

    def read_file(self, key: str, path: Path) -> bytes:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise self._fail(
                key, f"file {path} does not exist (for the demo, run `lienthong demo init`)"
            ) from None
        except OSError as exc:
            raise self._fail(key, f"cannot read {path}: {exc.strerror}") from exc


def _resolve(file: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (file.parent / path)


def _load_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(str(path), "-", "file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "-", f"not valid TOML: {exc}") from exc


def load_settings(
    config_path: Path | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    env = dict(os.environ if env is None else env)
    config_path = Path(env.get("LIENTHONG_CONFIG", config_path or DEFAULT_CONFIG))
    data = _load_toml(config_path)

    def section(name: str) -> _Reader:
        table = data.get(name, {})
        if not isinstance(table, dict):
            raise ConfigError(str(config_path), name, "must be a table")
        return _Reader(config_path, f"{name}.", table, env)

    hub = section("hub")
    listen = hub.string("listen", "LIENTHONG_HUB_LISTEN", "127.0.0.1:8780")
    host, _, port_text = listen.rpartition(":")
    if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(str(config_path), "hub.listen", f"{listen!r} is not HOST:PORT")

    database = section("database")
    limits = section("limits")
    trust = section("trust")
    directory = section("directory")
    agencies_path = directory.path("file", "LIENTHONG_DIRECTORY_FILE", "agencies.toml")
    key_path = hub.path("key", "LIENTHONG_HUB_KEY")
    cert_text = hub.string("certificate", "LIENTHONG_HUB_CERTIFICATE", "")
    if not cert_text and not is_pkcs12(key_path):
        raise ConfigError(
            str(config_path),
            "hub.certificate",
            "is required (only a PKCS#12 hub.key, .p12 or .pfx, carries its own certificate)",
        )
    cert_path = _resolve(config_path, cert_text) if cert_text else None
    refresh = trust.integer(
        "crl_refresh_seconds", "LIENTHONG_TRUST_CRL_REFRESH_SECONDS", 3600, minimum=10
    )
    grace = trust.integer("crl_grace_seconds", "LIENTHONG_TRUST_CRL_GRACE_SECONDS", 86400)
    if grace <= refresh:
        raise ConfigError(
            str(config_path),
            "trust.crl_grace_seconds",
            f"must be longer than trust.crl_refresh_seconds ({refresh}), not {grace}: the grace "
            "period is how long the hub keeps going when refreshes fail",
        )

    retention = section("retention")
    retention_days = retention.integer("days", "LIENTHONG_RETENTION_DAYS", 0)
    archive_text = retention.string("archive_dir", "LIENTHONG_RETENTION_ARCHIVE_DIR", "")
    if retention_days > 0 and not archive_text:
        raise ConfigError(
            str(config_path),
            "retention.archive_dir",
            f"is required when retention.days is set ({retention_days}): every document is "
            "archived there before it is purged",
        )

    agencies = load_agencies(agencies_path, env)
    peers = _peers(config_path, data, env)
    _check_federation(config_path, agencies_path, agencies, peers)
    settings = Settings(
        hub_id=hub.string("id", "LIENTHONG_HUB_ID", "lienthong"),
        listen_host=host.strip("[]"),
        listen_port=int(port_text),
        database_url=_database_url(
            config_path,
            database.string(
                "url", "LIENTHONG_DATABASE_URL", "sqlite+aiosqlite:///var/lienthong.db"
            ),
        ),
        max_body_bytes=limits.integer(
            "max_body_bytes", "LIENTHONG_LIMITS_MAX_BODY_BYTES", 25 * 1024 * 1024, minimum=1024
        ),
        hub_key_path=key_path,
        hub_cert_path=cert_path,
        trust_anchor_paths=tuple(
            _resolve(config_path, p) for p in trust.strings("anchors", "LIENTHONG_TRUST_ANCHORS")
        ),
        agencies_path=agencies_path,
        agencies=agencies,
        groups=load_groups(agencies_path),
        config_path=config_path,
        validation=_validation_policy(config_path, data, env),
        delivery=_delivery_settings(section("delivery")),
        trust_intermediate_paths=tuple(
            _resolve(config_path, p)
            for p in trust.strings("intermediates", "LIENTHONG_TRUST_INTERMEDIATES")
        ),
        crl_sources=tuple(
            p if p.startswith(("http://", "https://")) else str(_resolve(config_path, p))
            for p in trust.strings("crls", "LIENTHONG_TRUST_CRLS")
        ),
        require_revocation=trust.boolean(
            "require_revocation", "LIENTHONG_TRUST_REQUIRE_REVOCATION", True
        ),
        crl_refresh_seconds=refresh,
        crl_grace_seconds=grace,
        checkpoint_seconds=section("audit").integer(
            "checkpoint_seconds", "LIENTHONG_AUDIT_CHECKPOINT_SECONDS", 300, minimum=1
        ),
        hub_key_passphrase=(
            env[PASSPHRASE_ENV].encode("utf-8") if env.get(PASSPHRASE_ENV) else None
        ),
        peers=peers,
        console=_console_settings(section("console")),
        deadlines=deadline_settings(data, env, str(config_path)),
        alerts=_alert_settings(config_path, section("alerts")),
        retention_days=retention_days,
        retention_archive_dir=_resolve(config_path, archive_text) if archive_text else None,
        facade_enabled=_facade_enabled(section("facade")),
        log_format=_log_format(section("logging")),
        log_level=section("logging").choice(
            "level", "LIENTHONG_LOGGING_LEVEL", "warning", LOG_LEVELS
        ),
        metrics_token=_metrics_token(section("metrics")),
    )
    return settings


def _console_settings(r: _Reader) -> ConsoleSettings:
    unknown = set(r.table) - {"session_seconds", "login_attempts", "login_window_seconds"}
    if unknown:
        raise r._fail(
            sorted(unknown)[0],
            "is not a console setting; they are login_attempts, login_window_seconds, "
            "session_seconds",
        )
    return ConsoleSettings(
        session_seconds=r.integer(
            "session_seconds", "LIENTHONG_CONSOLE_SESSION_SECONDS", 8 * 3600, minimum=60
        ),
        login_attempts=r.integer(
            "login_attempts", "LIENTHONG_CONSOLE_LOGIN_ATTEMPTS", 10, minimum=1
        ),
        login_window_seconds=r.integer(
            "login_window_seconds", "LIENTHONG_CONSOLE_LOGIN_WINDOW_SECONDS", 300, minimum=1
        ),
    )


def deadline_settings(
    data: Mapping[str, Any], env: Mapping[str, str], where: str = "hub.toml"
) -> DeadlineSettings:
    """``[deadlines]`` of the raw hub configuration *data*, each key overridable as
    ``LIENTHONG_DEADLINES_<KEY>``. Hours may be fractions (1.5), so this reads its own numbers."""
    section = data.get("deadlines", {})
    if not isinstance(section, dict):
        raise ConfigError(where, "deadlines", "must be a table")
    known = [*ACK_KEYS.values(), "check_seconds"]
    unknown = set(section) - set(known)
    if unknown:
        raise ConfigError(
            where, f"deadlines.{sorted(unknown)[0]}", f"unknown key; known: {sorted(known)}"
        )
    windows = {}
    for priority, key in ACK_KEYS.items():
        value: Any = env.get(f"LIENTHONG_DEADLINES_{key.upper()}", section.get(key))
        if value is None:
            value = DEFAULT_ACK_HOURS[priority]
        try:
            hours = float(value)
        except (TypeError, ValueError):
            hours = -1.0
        if isinstance(value, bool) or not hours > 0:
            raise ConfigError(where, f"deadlines.{key}", f"{value!r} is not a number of hours > 0")
        windows[int(priority)] = dt.timedelta(hours=hours)
    check = _Reader(Path(where), "deadlines.", section, env).integer(
        "check_seconds", "LIENTHONG_DEADLINES_CHECK_SECONDS", DeadlineSettings.check_seconds
    )
    return DeadlineSettings(windows=windows, check_seconds=check)


def _alert_settings(config_path: Path, r: _Reader) -> AlertSettings:
    """``[alerts]``: a webhook (http or https URL) and/or a command (argv list, run without a
    shell). A command given as a path is relative to hub.toml; a bare name is looked up on PATH.
    Both are checked here, so a typo stops start-up instead of losing every alert later."""
    for key in r.table:
        if key not in ("webhook", "command", "timeout_seconds"):
            raise r._fail(
                key, "is not an alert setting; they are command, timeout_seconds, webhook"
            )
    webhook = r.string("webhook", "LIENTHONG_ALERTS_WEBHOOK", "")
    if webhook and not re.match(r"^https?://[^/\s]+", webhook):
        # Do not echo the value: a webhook URL often carries its token.
        raise r._fail("webhook", "must be an http:// or https:// URL")
    command = list(r.strings("command", "LIENTHONG_ALERTS_COMMAND"))
    if command:
        program = command[0]
        if "/" in program or os.sep in program:
            found = _resolve(config_path, program)
            if not (found.is_file() and os.access(found, os.X_OK)):
                raise r._fail("command", f"{found} is not an executable file")
            command[0] = str(found)
        elif shutil.which(program) is None:
            raise r._fail("command", f"{program!r} is not found on PATH")
    return AlertSettings(
        webhook=webhook,
        command=tuple(command),
        timeout_seconds=r.integer(
            "timeout_seconds", "LIENTHONG_ALERTS_TIMEOUT_SECONDS", 10, minimum=1
        ),
    )


def _facade_enabled(facade: _Reader) -> bool:
    """``[facade]``: whether the national-axis SDK's verbs are served (off unless asked for:
    they are a second way in, with the SDK's weaker conventions, README "Compatibility")."""
    for key in facade.table:
        if key != "enabled":
            raise facade._fail(key, "is not a facade setting; the only one is enabled")
    return facade.boolean("enabled", "LIENTHONG_FACADE_ENABLED", False)


def _log_format(r: _Reader) -> LogFormat:
    value = r.choice("format", "LIENTHONG_LOGGING_FORMAT", "text", LOG_FORMATS)
    return "json" if value == "json" else "text"


def _metrics_token(r: _Reader) -> str | None:
    """``[metrics]``: the scrapers' bearer token, from ``token_file`` or ``token_env``."""
    known = {"token_file", "token_env"}
    if "token" in r.table:
        raise r._fail(
            "token",
            "never write a token in hub.toml: name a file (token_file) or an environment "
            "variable (token_env) that holds it",
        )
    for key in r.table:
        if key not in known:
            raise r._fail(key, f"is not a metrics setting; they are {', '.join(sorted(known))}")
    token_file = r.string("token_file", "LIENTHONG_METRICS_TOKEN_FILE", "")
    token_env = r.string("token_env", "LIENTHONG_METRICS_TOKEN_ENV", "")
    if token_file and token_env:
        raise r._fail("token_file", "give token_file or token_env, not both")
    if token_file:
        token = r.read_file("token_file", _resolve(r.file, token_file)).decode("utf-8", "replace")
        if not token.strip():
            raise r._fail("token_file", "the file is empty")
        return token.strip()
    if token_env:
        token = r.env.get(token_env, "").strip()
        if not token:
            raise r._fail("token_env", f"the environment variable {token_env} is empty or unset")
        return token
    return None


def _peers(
    config_path: Path, data: Mapping[str, Any], env: Mapping[str, str]
) -> tuple[PeerConfig, ...]:
    """``[[peer]]`` tables: the hubs this one forwards to (README, "Federation")."""
    entries = data.get("peer", [])
    if not isinstance(entries, list):
        raise ConfigError(str(config_path), "peer", "must be an array of tables ([[peer]])")
    known = {"name", "url", "credential_file", "credential_env", "routes", "default"}
    out: list[PeerConfig] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ConfigError(str(config_path), f"peer[{index}]", "must be a table")
        name = entry.get("name")
        if not isinstance(name, str) or not ACCOUNT_ID.match(name):
            raise ConfigError(
                str(config_path), f"peer[{index}].name", "is required: the peer's account id"
            )
        prefix = "LIENTHONG_PEER_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper() + "_"
        r = _Reader(config_path, f"peer {name}.", entry, env)
        if "credential" in entry:
            raise r._fail(
                "credential",
                "never write a credential in hub.toml: name a file (credential_file) or an "
                "environment variable (credential_env) that holds it",
            )
        for key in entry:
            if key not in known:
                raise r._fail(key, f"is not a peer setting; they are {', '.join(sorted(known))}")
        url = r.string("url", prefix + "URL").rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise r._fail("url", f"{url!r} is not an http(s) URL")
        credential_file = r.string("credential_file", prefix + "CREDENTIAL_FILE", "")
        credential_env = r.string("credential_env", prefix + "CREDENTIAL_ENV", "")
        if bool(credential_file) == bool(credential_env):
            raise r._fail(
                "credential_file",
                "give exactly one of credential_file and credential_env: this hub's "
                "credential at the peer",
            )
        if credential_file:
            token = r.read_file("credential_file", _resolve(config_path, credential_file))
            credential = token.decode("utf-8", "replace").strip()
        else:
            credential = env.get(credential_env, "").strip()
            if not credential:
                raise r._fail(
                    "credential_env", f"the environment variable {credential_env} is empty or unset"
                )
        if not credential:
            raise r._fail("credential_file", "the file is empty")
        routes = r.strings("routes", prefix + "ROUTES")
        for pattern in routes:
            problem = pattern_problem(pattern)
            if problem:
                raise r._fail("routes", problem)
        default = r.boolean("default", prefix + "DEFAULT", False)
        if not routes and not default:
            raise r._fail("routes", "a peer needs routes (code patterns) or default = true")
        out.append(PeerConfig(name, url, credential, routes, default))
    names = [p.name for p in out]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(str(config_path), f"peer {name}.name", "is listed twice")
    defaults = [p.name for p in out if p.default]
    if len(defaults) > 1:
        raise ConfigError(
            str(config_path),
            f"peer {defaults[1]}.default",
            f"only one peer can be the default; {defaults[0]} already is",
        )
    return tuple(out)


def _check_federation(
    config_path: Path,
    agencies_path: Path,
    agencies: tuple[AgencyConfig, ...],
    peers: tuple[PeerConfig, ...],
) -> None:
    """An agency reached through a peer (``via``) needs that peer configured, or documents to
    it could be accepted and never leave."""
    peer_names = {p.name for p in peers}
    for agency in agencies:
        if agency.via and agency.via not in peer_names:
            raise ConfigError(
                str(agencies_path),
                f"agency {agency.code}.via",
                f"{agency.via} has no [[peer]] table in {config_path}: documents to "
                f"{agency.code} could not be forwarded",
            )


def _delivery_settings(r: _Reader) -> DeliverySettings:
    d = DeliverySettings()

    def integer(key: str, minimum: int) -> int:
        value: int = getattr(d, key)
        return r.integer(key, f"LIENTHONG_DELIVERY_{key.upper()}", value, minimum=minimum)

    settings = DeliverySettings(
        expire_after_seconds=integer("expire_after_seconds", 0),
        push_timeout_seconds=integer("push_timeout_seconds", 1),
        max_attempts=integer("max_attempts", 1),
        max_age_seconds=integer("max_age_seconds", 1),
        retry_base_ms=integer("retry_base_ms", 1),
        retry_max_delay_seconds=integer("retry_max_delay_seconds", 1),
    )
    if settings.retry_max_delay_seconds * 1000 < settings.retry_base_ms:
        raise r._fail(
            "retry_max_delay_seconds",
            f"must be at least retry_base_ms ({settings.retry_base_ms} ms)",
        )
    return settings


def load_validation_policy(
    config_path: Path, env: Mapping[str, str] | None = None
) -> ValidationPolicy:
    """Only the ``[validation]`` section of *config_path* (with its env overrides), for tools
    that check packages without starting a hub (``lienthong validate``)."""
    env = dict(os.environ if env is None else env)
    return _validation_policy(config_path, _load_toml(config_path), env)


def _validation_policy(
    config_path: Path, data: Mapping[str, Any], env: Mapping[str, str]
) -> ValidationPolicy:
    """``[validation]``: per rule "reject", "warn" or "accept" (README, "Validation policy")."""
    table = data.get("validation", {})
    if not isinstance(table, dict):
        raise ConfigError(str(config_path), "validation", "must be a table")
    rules = ValidationPolicy.rules()
    for key in table:
        if key not in rules:
            raise ConfigError(
                str(config_path),
                f"validation.{key}",
                f"is not a validation rule; the rules are {', '.join(rules)}",
            )
    reader = _Reader(config_path, "validation.", table, env)
    defaults = ValidationPolicy()
    values: dict[str, Any] = {
        rule: reader.choice(
            rule, f"LIENTHONG_VALIDATION_{rule.upper()}", getattr(defaults, rule), ACTIONS
        )
        for rule in rules
    }
    return ValidationPolicy(**values)  # each value checked against ACTIONS above


def _database_url(config_path: Path, url: str) -> str:
    """A relative SQLite path is relative to the project (the config folder's parent)."""
    prefix = "sqlite+aiosqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
        path = (config_path.parent.parent / url[len(prefix) :]).resolve()
        return prefix + str(path)
    return url


def load_agencies(path: Path, env: Mapping[str, str]) -> tuple[AgencyConfig, ...]:
    data = _load_toml(path)
    entries = data.get("agency", [])
    if not isinstance(entries, list) or not entries:
        raise ConfigError(str(path), "agency", "needs at least one [[agency]] table")
    seen: set[str] = set()
    out = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ConfigError(str(path), f"agency[{index}]", "must be a table")
        code = entry.get("code")
        if not isinstance(code, str) or not code:
            raise ConfigError(str(path), f"agency[{index}].code", "is required")
        agency = _agency(path, code, entry, env)
        if agency.code in seen:
            raise ConfigError(str(path), f"agency[{index}].code", f"{code} is listed twice")
        seen.add(agency.code)
        out.append(agency)
    hubs = {a.code for a in out if a.role == "hub"}
    for agency in out:
        if agency.via and agency.via not in hubs:
            raise ConfigError(
                str(path),
                f"agency {agency.code}.via",
                f"{agency.via} is not a hub account (role = 'hub') in the directory",
            )
        if agency.parent and agency.parent not in seen:
            raise ConfigError(
                str(path),
                f"agency {agency.code}.parent",
                f"{agency.parent} is not in the directory",
            )
    return tuple(out)


def load_groups(path: Path) -> tuple[GroupConfig, ...]:
    """The ``[[group]]`` tables of the directory file, checked against its agencies."""
    data = _load_toml(path)
    agencies = {
        e.get("code"): e.get("role", "agency")
        for e in data.get("agency", [])
        if isinstance(e, dict)
    }
    entries = data.get("group", [])
    if not isinstance(entries, list):
        raise ConfigError(str(path), "group", "must be a list of [[group]] tables")
    out: list[GroupConfig] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ConfigError(str(path), f"group[{index}]", "must be a table")
        code = entry.get("code")
        if not isinstance(code, str) or not code:
            raise ConfigError(str(path), f"group[{index}].code", "is required")
        r = _Reader(path, f"group {code}.", entry, {})
        if not AGENCY_CODE.match(code):
            raise r._fail("code", f"{code!r} is not a QCVN 102 code like 000.00.90.H26")
        if code in agencies:
            raise r._fail("code", f"{code} is already an agency's code")
        if any(g.code == code for g in out):
            raise r._fail("code", f"{code} is listed twice")
        group = GroupConfig(
            code=code,
            name=r.string("name", ""),
            members=r.strings("members", ""),
            children_of=r.strings("children_of", ""),
        )
        if not group.members and not group.children_of:
            raise r._fail("members", "a group needs members, children_of, or both")
        for parent in group.children_of:
            if parent not in agencies:
                raise r._fail("children_of", f"{parent} is not in the directory")
        for member in group.members:
            if "*" in member or "?" in member:
                continue
            if member not in agencies:
                raise r._fail("members", f"{member} is not in the directory")
            if agencies[member] != "agency":
                raise r._fail(
                    "members", f"{member} is an {agencies[member]} account, not an agency"
                )
        out.append(group)
    return tuple(out)


def _agency(
    path: Path, code: str, entry: Mapping[str, Any], env: Mapping[str, str]
) -> AgencyConfig:
    env_prefix = "LIENTHONG_AGENCY_" + re.sub(r"[^A-Za-z0-9]", "_", code).upper() + "_"
    r = _Reader(path, f"agency {code}.", entry, env)

    def var(key: str) -> str:
        return env_prefix + key.upper()

    role = r.string("role", var("role"), "agency")
    if role not in ROLES:
        raise r._fail("role", f"{role!r} is not one of {', '.join(ROLES)}")
    if role == "agency" and not AGENCY_CODE.match(code):
        raise r._fail("code", f"{code!r} is not a QCVN 102 code like 000.00.00.H26")
    if role != "agency" and not (AGENCY_CODE.match(code) or ACCOUNT_ID.match(code)):
        raise r._fail("code", f"{code!r} is not a valid identity")
    delivery = r.string("delivery", var("delivery"), "pull")
    if delivery not in DELIVERY_MODES:
        raise r._fail("delivery", f"{delivery!r} is not one of {', '.join(DELIVERY_MODES)}")
    push_url = r.string("push_url", var("push_url"), "")
    if delivery == "push" and not push_url.startswith(("http://", "https://")):
        raise r._fail("push_url", "an http(s) URL is required when delivery = 'push'")

    digest = r.string("credential_sha256", var("credential_sha256"), "")
    credential_file = r.string("credential_file", var("credential_file"), "")
    if credential_file:
        digest = r.read_file("credential_file", _resolve(path, credential_file)).decode().strip()
    if digest and not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise r._fail("credential_sha256", "must be 64 lowercase hex digits (a SHA-256)")

    certificates = tuple(
        r.read_file("certificates", _resolve(path, p))
        for p in r.strings("certificates", var("certificates"))
    )
    if role == "agency" and not certificates:
        raise r._fail("certificates", "an agency needs at least one signing certificate")
    legacy_sha1 = r.boolean("legacy_sha1", var("legacy_sha1"), False)
    if legacy_sha1 and role != "agency":
        raise r._fail("legacy_sha1", "only an agency signs packages")
    read_bodies = r.boolean("read_bodies", var("read_bodies"), False)
    if read_bodies and role != "auditor":
        raise r._fail("read_bodies", "is a right of auditor accounts")
    via, serves = _federation_keys(r, role, var, digest, delivery, certificates)

    def optional(key: str) -> int | None:
        present = key in entry or var(key) in env
        return r.integer(key, var(key), 0, minimum=1) if present else None

    return AgencyConfig(
        max_attempts=optional("max_attempts"),
        max_age_seconds=optional("max_age_seconds"),
        code=code,
        legacy_sha1=legacy_sha1,
        read_bodies=read_bodies,
        name=r.string("name", var("name")),
        role=role,  # checked against ROLES above
        parent=r.string("parent", var("parent"), ""),
        delivery=delivery,  # checked against DELIVERY_MODES above
        push_url=push_url,
        credential_sha256=digest,
        certificates=certificates,
        via=via,
        serves=serves,
    )


def _federation_keys(
    r: _Reader,
    role: str,
    var: Any,
    digest: str,
    delivery: str,
    certificates: tuple[bytes, ...],
) -> tuple[str, tuple[str, ...]]:
    """``via`` (an agency served by a peer hub) and ``serves`` (a hub account's patterns)."""
    via = r.string("via", var("via"), "")
    if via and role != "agency":
        raise r._fail("via", "only an agency is reached through a peer hub")
    if via and digest:
        # It talks to its own hub; here it only ever appears through the peer's account.
        raise r._fail("credential_file", "an agency reached via a peer hub has no credential here")
    if via and delivery != "pull":
        raise r._fail("delivery", "an agency reached via a peer hub is delivered to through it")
    serves = r.strings("serves", var("serves"))
    if serves and role != "hub":
        raise r._fail("serves", "only a hub account (role = 'hub') serves other codes")
    for pattern in serves:
        problem = pattern_problem(pattern)
        if problem:
            raise r._fail("serves", problem)
    if role == "hub" and certificates:
        raise r._fail(
            "certificates",
            "a hub account signs nothing here: register the certificates of the agencies it "
            "serves on their own entries (via = this account)",
        )
    return via, serves


def register_certificate(agencies_file: Path, code: str, certificate: Path) -> bool:
    """Append *certificate* to the ``certificates`` of agency *code* in *agencies_file*.

    The file is edited in place with tomlkit, so its comments, order and layout stay as they
    are; it is written atomically. The path is written relative to the file when the
    certificate lies in the same project (as the committed directory writes them), else
    absolute. Returns False (and writes nothing) if the certificate is already listed.
    """
    import tomlkit

    from signing.keyfiles import write_file

    text = agencies_file.read_text(encoding="utf-8")
    document = tomlkit.parse(text)
    entries = document.get("agency")
    entry = next(
        (e for e in (entries or []) if isinstance(e, dict) and e.get("code") == code), None
    )
    if entry is None:
        raise ConfigError(str(agencies_file), "agency", f"{code} is not in the directory")
    if entry.get("role", "agency") != "agency":
        raise ConfigError(
            str(agencies_file), f"agency {code}.certificates", "only agencies sign packages"
        )
    target = certificate.resolve()
    base = agencies_file.resolve().parent
    relative = Path(os.path.relpath(target, base))
    shown = str(relative) if relative.parts[:3] != ("..", "..", "..") else str(target)
    listed = entry.get("certificates")
    if listed is None:
        listed = tomlkit.array()
        entry["certificates"] = listed
    if any(_resolve(agencies_file, str(p)).resolve() == target for p in listed):
        return False
    listed.append(shown)
    write_file(agencies_file, tomlkit.dumps(document).encode("utf-8"))
    return True
