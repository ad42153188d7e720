"""The configuration as typed models (L0, pure: no yaml, no I/O).

One pydantic model per top-level section of ``config/pbx.yaml``; `PbxConfig` holds them all.
Every model forbids unknown keys and is frozen. Value checks that concern one field (an
extension is digits, a host is an IP address) are validators on the field's type; checks that
relate several fields of one section (``min_expires <= default_expires``, duplicate extensions)
are `model_validator`s that raise one ``config_rules`` error carrying *all* violations of that
section, each with its own sub-path, so the loader can point every one at its own line.

Adding a section: write a `Section` subclass with defaults, add it as a field of `PbxConfig`
(with ``Field(default_factory=...)`` when the section is optional), and describe any value type
that is not a plain ``str``/``int``/``bool``/``Literal`` with an `Expect` marker, which error
messages quote as what was expected.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections import Counter
from dataclasses import dataclass
from typing import Annotated, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from pbx.acd.schema import CustomerStatusConfig, QueueConfig
from pbx.dialer.schema import CampaignConfig, DncConfig
from pbx.ivr.schema import CustomerSeed, DidRoute, FlowConfig, TimeZoneName
from pbx.repositories import AgentRecord
from pbx.starter import PROMPTS as BUNDLED_PROMPTS

# A key path inside the configuration: ("agents", 3, "password").
Loc = tuple[str | int, ...]

DigestAlgorithm = Literal["SHA-256", "MD5"]
# RFC 7616 §3.2, in order of preference.
DIGEST_ALGORITHMS: tuple[DigestAlgorithm, ...] = ("SHA-256", "MD5")


@dataclass(frozen=True, slots=True)
class Expect:
    """Annotation marker: what a value should look like, in words, for error messages."""

    text: str


def format_loc(loc: Loc) -> str:
    """``("agents", 3, "password")`` -> ``agents[3].password``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _raise_violations(violations: list[tuple[Loc, str]]) -> None:
    # One error per section; the loader expands `violations` into one issue per sub-path.
    if violations:
        summary = "; ".join(f"{format_loc(loc)}: {message}" for loc, message in violations)
        raise PydanticCustomError(
            "config_rules", "{summary}", {"summary": summary, "violations": tuple(violations)}
        )


# --- value types -------------------------------------------------------------------------------

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*\.?$")
_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
_EXTENSION = re.compile(r"^[0-9]{1,15}$")
_TRUNK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_DB_SCHEMES = ("sqlite", "postgresql")


def _ip_address(value: str) -> str:
    text = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 or IPv6 address") from None


def _network(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError:
        pass
    try:
        loose = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address or CIDR network") from None
    raise ValueError(f"{value!r} has host bits set; did you mean '{loose}'?")


def _host(value: str) -> str:
    try:
        return _ip_address(value)
    except ValueError:
        pass
    if not _HOSTNAME.match(value):
        raise ValueError(f"{value!r} is not a host name or IP address")
    return value.lower()


def _extension(value: str) -> str:
    if not _EXTENSION.match(value):
        raise ValueError(f"{value!r} is not an extension (1 to 15 digits, like '1001')")
    return value


def _e164(value: str) -> str:
    if not _E164.match(value):
        raise ValueError(f"{value!r} is not an E.164 number (like '+4930123456')")
    return value


def _trunk_name(value: str) -> str:
    if not _TRUNK_NAME.match(value):
        raise ValueError(f"{value!r} is not a name (letters, digits, '_', '.', '-')")
    return value


def _database_url(value: str) -> str:
    scheme = value.split("://", 1)[0] if "://" in value else ""
    if scheme.split("+", 1)[0] not in _DB_SCHEMES:
        raise ValueError(
            f"{value!r} is not a database URL (sqlite:///PATH or postgresql://USER@HOST/DB)"
        )
    return value


NonEmptyStr = Annotated[str, Field(min_length=1)]
Port = Annotated[int, Field(ge=1, le=65535)]
Seconds = Annotated[int, Field(ge=1)]
Milliseconds = Annotated[int, Field(ge=1)]
IpAddress = Annotated[
    str, AfterValidator(_ip_address), Expect("an IPv4 or IPv6 address, like 127.0.0.1 or ::1")
]
Network = Annotated[
    str,
    AfterValidator(_network),
    Expect("an IP address or a CIDR network, like 192.0.2.0/24"),
]
Host = Annotated[str, AfterValidator(_host), Expect("a host name or an IP address")]
Domain = Annotated[str, AfterValidator(_host), Expect("a domain name, like hotline.example")]
Extension = Annotated[str, AfterValidator(_extension), Expect("a string of digits, like '1001'")]
E164Number = Annotated[str, AfterValidator(_e164), Expect("an E.164 number, like '+4930123456'")]
FeatureCode = Annotated[
    str, Field(pattern=r"^[*#][0-9*#]{1,7}$"), Expect("a code starting with * or #, like '*45'")
]
TrunkName = Annotated[str, AfterValidator(_trunk_name), Expect("a name, like 'carrier'")]
DatabaseUrl = Annotated[
    str,
    AfterValidator(_database_url),
    Expect("a database URL, like sqlite:///var/pbx.db or postgresql://pbx@db/pbx"),
]
Password = Annotated[str, Field(min_length=4), Expect("a string of at least 4 characters")]
_SCRYPT_HASH = re.compile(r"^scrypt\$(1[0-9]|20)\$[0-9]{1,2}\$[0-9]{1,2}\$[A-Za-z0-9_-]{16,}"
                          r"\$[A-Za-z0-9_-]{32,}$")


def _desk_password_hash(value: str) -> str:
    if not _SCRYPT_HASH.match(value):
        raise ValueError("not a password hash from `pbx hash-password` "
                         "(scrypt$COST$R$P$SALT$HASH, cost 10..20)")
    return value


DeskPasswordHash = Annotated[
    str, AfterValidator(_desk_password_hash),
    Expect("a hash printed by `pbx hash-password` (scrypt$14$8$1$…)"),
]
SkillLevel = Annotated[int, Field(ge=1, le=10)]
Transport = Literal["udp", "tcp"]
Role = Literal["agent", "supervisor", "admin"]
Codec = Literal["PCMU", "PCMA", "G722"]
DeskLanguage = Literal["de", "en"]  # the languages the agent desktop speaks


class Section(BaseModel):
    """Base of every configuration model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --- sections ----------------------------------------------------------------------------------


class GeneralConfig(Section):
    """``pbx:`` — the installation's name and where it keeps its files."""

    name: NonEmptyStr = "Hotline"
    data_dir: NonEmptyStr = "var"


class ListenConfig(Section):
    """One SIP listening socket."""

    transport: Transport
    host: IpAddress
    port: Port = 5060

    def describe(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport} {host}:{self.port}"


def _default_listen() -> tuple[ListenConfig, ...]:
    return (
        ListenConfig(transport="udp", host="127.0.0.1"),
        ListenConfig(transport="tcp", host="127.0.0.1"),
    )


class SipTcpConfig(Section):
    """``sip.tcp:`` — how long SIP over TCP waits, and how many connections it takes.

    A message begun but not complete (headers unfinished, or a body shorter than its
    Content-Length) is cut off `message_timeout_s` after its first byte, as Kamailio and
    Asterisk do; a connection with no message for `idle_timeout_s` is closed, except one that
    carries a live registration binding (the phone's only way in for calls, RFC 5626 §5):
    that one is closed only after `registered_idle_timeout_s`, above the registrar's
    `max_expires`, so a phone that re-registers keeps it. Connections beyond
    `max_connections_per_address` from one address or `max_connections` in all are closed at
    once, logged at most once per address per `refused_log_interval_s`.
    """

    message_timeout_s: Seconds = 30
    idle_timeout_s: Seconds = 120
    registered_idle_timeout_s: Seconds = 3900
    max_connections_per_address: Annotated[int, Field(ge=1)] = 32
    max_connections: Annotated[int, Field(ge=1)] = 2000
    refused_log_interval_s: Seconds = 60


class SipConfig(Section):
    """``sip:`` — the domain (also the digest realm), sockets and RFC 3261 timers."""

    domain: Domain
    listen: tuple[ListenConfig, ...] = Field(default_factory=_default_listen, min_length=1)
    user_agent: NonEmptyStr = "pbx/0.1"
    max_message_bytes: Annotated[int, Field(ge=1024, le=1024 * 1024)] = 65535
    socket_buffer_bytes: Annotated[int, Field(ge=65536)] = 4 * 1024 * 1024
    t1_ms: Milliseconds = 500  # RFC 3261 §17.1.1.1
    t2_ms: Milliseconds = 4000
    t4_ms: Milliseconds = 5000
    # admission control (pbx.call.admission): new calls beyond these get 503 + Retry-After
    max_calls: Annotated[int, Field(ge=1)] | None = None  # calls in progress
    max_calls_per_second: Annotated[float, Field(gt=0)] | None = None
    overload_lag_ms: Annotated[int, Field(ge=0)] = 0  # event loop this late: shed; 0 = off
    # an INVITE that waited this long unread in the socket queue gets 503; 0 = off
    overload_queue_ms: Annotated[int, Field(ge=0)] = 400
    tcp: SipTcpConfig = Field(default_factory=SipTcpConfig)

    @model_validator(mode="after")
    def _check(self) -> Self:
        violations: list[tuple[Loc, str]] = []
        seen: dict[tuple[str, str, int], int] = {}
        for index, entry in enumerate(self.listen):
            key = (entry.transport, entry.host, entry.port)
            if key in seen:
                violations.append(
                    (("listen", index), f"{entry.describe()} is already listen[{seen[key]}]")
                )
            seen.setdefault(key, index)
        if self.t2_ms < self.t1_ms:
            violations.append((("t2_ms",), f"{self.t2_ms} is below t1_ms ({self.t1_ms})"))
        _raise_violations(violations)
        return self


class RegistrarConfig(Section):
    """``registrar:`` — binding lifetimes (RFC 3261 §10.3) and contacts per address of record."""

    min_expires: Seconds = 60
    default_expires: Seconds = 3600
    max_expires: Seconds = 3600
    max_contacts_per_aor: Annotated[int, Field(ge=1, le=1000)] = 10

    @model_validator(mode="after")
    def _check(self) -> Self:
        violations: list[tuple[Loc, str]] = []
        if self.min_expires > self.max_expires:
            violations.append(
                (("min_expires",), f"{self.min_expires} is above max_expires ({self.max_expires})")
            )
        elif not self.min_expires <= self.default_expires <= self.max_expires:
            violations.append(
                (
                    ("default_expires",),
                    f"{self.default_expires} is not between min_expires ({self.min_expires})"
                    f" and max_expires ({self.max_expires})",
                )
            )
        _raise_violations(violations)
        return self


class SecurityConfig(Section):
    """``security:`` — digest algorithms, nonce lifetime and the per-source failure ban."""

    auth_algorithms: tuple[DigestAlgorithm, ...] = Field(default=DIGEST_ALGORITHMS, min_length=1)
    nonce_lifetime_s: Seconds = 300
    max_auth_failures: Annotated[int, Field(ge=1)] = 10
    failure_window_s: Seconds = 60
    ban_s: Seconds = 600
    trusted_networks: tuple[Network, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> Self:
        violations: list[tuple[Loc, str]] = []
        for index in _repeats(self.auth_algorithms):
            violations.append(
                (("auth_algorithms", index), f"{self.auth_algorithms[index]!r} is listed twice")
            )
        _raise_violations(violations)
        return self


ApiScope = Literal["metrics", "stats", "cdrs", "registrations", "campaigns", "calls",
                   "control", "customers", "reports", "recordings"]
API_SCOPES: tuple[ApiScope, ...] = (
    "metrics", "stats", "cdrs", "registrations", "campaigns", "calls",
    "control", "customers", "reports", "recordings",
)
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def _sha256_hex(value: str) -> str:
    text = value.strip().lower()
    if not _SHA256_HEX.match(text):
        raise ValueError(f"{value!r} is not a SHA-256 digest (64 hex digits)")
    return text


def _env_name(value: str) -> str:
    if not _ENV_NAME.match(value):
        raise ValueError(f"{value!r} is not an environment variable name")
    return value


Sha256Hex = Annotated[
    str, AfterValidator(_sha256_hex),
    Expect("the SHA-256 of the token, 64 hex digits (printf %s TOKEN | sha256sum)"),
]
EnvName = Annotated[str, AfterValidator(_env_name), Expect("an environment variable name")]


class ApiTokenConfig(Section):
    """``http.api_tokens[]`` — a bearer token for scrapers and monitoring (Prometheus, a CDR
    export): it may read the operations endpoints named in `scopes`, nothing else (not the CTI
    API). The token itself is never written into this file: give exactly one of `token_sha256`
    (its SHA-256, hex), `token_file` (a file holding it, read at start — the same file
    Prometheus' ``authorization: credentials_file`` points at) or `token_env` (an environment
    variable holding it). `role` is whose form permissions apply to what it reads: CDR
    variables a form hides from that role are left out."""

    name: TrunkName
    token_sha256: Sha256Hex | None = None
    token_file: NonEmptyStr | None = None
    token_env: EnvName | None = None
    scopes: tuple[ApiScope, ...] = Field(default=("metrics", "stats"), min_length=1)
    role: Literal["supervisor", "admin"] = "supervisor"

    @model_validator(mode="after")
    def _check(self) -> Self:
        violations: list[tuple[Loc, str]] = []
        given = [k for k in ("token_sha256", "token_file", "token_env") if getattr(self, k)]
        if len(given) != 1:
            what = ", ".join(given) or "none"
            violations.append(((), f"expected exactly one of token_sha256, token_file, "
                                   f"token_env; got {what}"))
        for index in _repeats(self.scopes):
            violations.append((("scopes", index), f"{self.scopes[index]!r} is listed twice"))
        _raise_violations(violations)
        return self


class HttpConfig(Section):
    """``http:`` — the CTI / agent desktop / metrics port and its perimeter.

    `trusted_proxies`: reverse proxies whose ``X-Forwarded-For`` / ``X-Forwarded-Proto`` are
    believed (from anyone else those headers are ignored; empty: never). `trusted_networks`:
    sources whose failed desktop logins are never counted nor banned (the HTTP side's own list;
    SIP's ``security.trusted_networks`` does not apply here). `max_body_bytes`: larger request
    bodies are refused with 413 before they are read. `api_tokens`: see `ApiTokenConfig`.
    """

    host: IpAddress = "127.0.0.1"
    port: Port = 8080
    trusted_proxies: tuple[Network, ...] = ()
    trusted_networks: tuple[Network, ...] = ()
    max_body_bytes: Annotated[int, Field(ge=1024, le=16 * 1024 * 1024)] = 64 * 1024
    api_tokens: tuple[ApiTokenConfig, ...] = ()

    @field_validator("api_tokens")
    @classmethod
    def _unique_token_names(
        cls, tokens: tuple[ApiTokenConfig, ...]
    ) -> tuple[ApiTokenConfig, ...]:
        _raise_violations(_duplicates(tokens, "api_tokens", "name"))
        return tokens


class DatabaseConfig(Section):
    """``database:`` — SQLAlchemy URL; unset means a SQLite file in the data directory."""

    url: DatabaseUrl | None = None
    echo: bool = False


class LoggingConfig(Section):
    """``logging:`` — level and format (auto: console on a terminal, JSON lines otherwise)."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class MediaConfig(Section):
    """``media:`` — the address and port range of RTP sockets (RTP even, RTCP odd)."""

    host: IpAddress = "127.0.0.1"
    rtp_port_min: Annotated[int, Field(ge=1024, le=65534)] = 20000
    rtp_port_max: Annotated[int, Field(ge=1025, le=65535)] = 29999
    # announcements and music; relative: to the configuration file's directory; unset: the
    # prompts shipped with the PBX (`pbx.starter.PROMPTS`)
    prompts_dir: NonEmptyStr | None = None
    rtp_timeout_s: Annotated[float, Field(gt=0)] = 30.0  # no RTP this long ends the call
    # offered in this order; answers take the first of the peer's offer that is listed here
    codecs: Annotated[list[Codec], Field(min_length=1)] = ["PCMU", "PCMA"]
    # 0: RTP in the PBX process; N: N media worker processes (a call's legs share one), for
    # more bridged calls than one core relays (about 600 pairs)
    workers: Annotated[int, Field(ge=0, le=64)] = 0

    @model_validator(mode="after")
    def _check(self) -> Self:
        violations: list[tuple[Loc, str]] = []
        if len(set(self.codecs)) != len(self.codecs):
            violations.append((("codecs",), f"{self.codecs} names a codec twice"))
        if self.rtp_port_min % 2:
            violations.append(
                (("rtp_port_min",), f"{self.rtp_port_min} is odd (RTP uses even ports)")
            )
        if self.rtp_port_max <= self.rtp_port_min:
            violations.append(
                (
                    ("rtp_port_max",),
                    f"{self.rtp_port_max} is not above rtp_port_min ({self.rtp_port_min})",
                )
            )
        _raise_violations(violations)
        return self

    @property
    def prompts_path(self) -> str:
        """The prompts directory: `prompts_dir`, or the prompts shipped with the PBX."""
        return self.prompts_dir or str(BUNDLED_PROMPTS)

    @property
    def rtp_pairs(self) -> int:
        """How many RTP/RTCP port pairs the range holds (how many media sessions at most)."""
        first = self.rtp_port_min + (self.rtp_port_min % 2)
        return max(0, (self.rtp_port_max - first + 1) // 2)


def digest_ha1(username: str, realm: str, password: str, algorithm: str) -> str:
    """HA1 = H(username ":" realm ":" password), RFC 7616 §3.4.2.

    `algorithm` is "MD5" or "SHA-256" (case-insensitive); another raises ValueError.
    """
    name = {"MD5": "md5", "SHA-256": "sha256"}.get(algorithm.upper())
    if name is None:
        raise ValueError(f"unsupported digest algorithm {algorithm!r}")
    return hashlib.new(name, f"{username}:{realm}:{password}".encode()).hexdigest()


class RecordingConfig(Section):
    """``recording:`` — call recordings (which calls: ``queues[].recording``,
    ``campaigns[].recording``). Files are stereo WAV (caller left, agent right) under
    ``data_dir/recordings/YYYY/MM/DD/``, linked from the CDR. Those older than
    `retention_days` (0: kept for ever) are deleted at start and every `cleanup_interval_s`,
    and their CDRs say so. Supervisors and admins (and API tokens with scope ``recordings``)
    listen to them; agents to their own calls' only when `agents_may_listen`."""

    retention_days: Annotated[int, Field(ge=0)] = 90
    cleanup_interval_s: Annotated[float, Field(ge=60)] = 3600.0
    agents_may_listen: bool = False


class AgentConfig(Section):
    """One agent seat: its extension is also its SIP user name."""

    extension: Extension
    name: NonEmptyStr
    password: Password
    role: Role = "agent"
    skills: dict[NonEmptyStr, SkillLevel] = Field(default_factory=dict)
    groups: tuple[NonEmptyStr, ...] = ()
    enabled: bool = True
    # Logged in to the queues at start (a phone-only seat, like Asterisk's static members);
    # false: the agent logs in from the desk or with the `feature_codes.login` code.
    auto_login: bool = True
    # The desktop password as a scrypt hash (`pbx hash-password`); unset: the SIP password.
    desk_password_hash: DeskPasswordHash | None = None

    def ha1(self, realm: str, algorithm: str = "SHA-256") -> str:
        """The digest HA1 of this agent's credentials in `realm` (``sip.domain``)."""
        return digest_ha1(self.extension, realm, self.password, algorithm)

    def to_record(self, realm: str) -> AgentRecord:
        """The storage record: the password itself is never stored, only its HA1s."""
        return AgentRecord(
            extension=self.extension,
            name=self.name,
            role=self.role,
            password_ha1_md5=self.ha1(realm, "MD5"),
            password_ha1_sha256=self.ha1(realm, "SHA-256"),
            enabled=self.enabled,
        )


class TrunkConfig(Section):
    """A carrier SIP trunk: where to send calls and from where to accept them."""

    name: TrunkName
    host: Host
    port: Port = 5060
    transport: Transport = "udp"
    inbound_addresses: tuple[Network, ...] = ()
    username: NonEmptyStr | None = None
    password: NonEmptyStr | None = None
    # `register` in the file; renamed here because pydantic models inherit ABCMeta.register.
    registers: bool = Field(default=False, alias="register")
    register_expires: Annotated[int, Field(ge=60)] = 3600
    caller_id: E164Number | None = None
    from_domain: Domain | None = None
    country_code: Annotated[str, Field(pattern=r"^[1-9][0-9]{0,2}$")] = "49"  # for E.164
    # INVITEs from `inbound_addresses` must also answer a digest challenge (407) with
    # `username`/`password` (in our realm, sip.domain): an address alone can be spoofed.
    inbound_auth: bool = False
    # this trunk's own admission limits (besides sip.max_calls …): 503 + Retry-After beyond
    max_calls: Annotated[int, Field(ge=1)] | None = None  # its calls in progress
    max_calls_per_second: Annotated[float, Field(gt=0)] | None = None  # new calls from it

    @model_validator(mode="after")
    def _check(self) -> Self:
        violations: list[tuple[Loc, str]] = []
        if self.registers:
            for key in ("username", "password"):
                if getattr(self, key) is None:
                    violations.append(((key,), "required when register is true"))
        if self.inbound_auth:
            for key in ("username", "password"):
                if getattr(self, key) is None:
                    violations.append(((key,), "required when inbound_auth is true"))
            if not self.inbound_addresses:
                violations.append((("inbound_addresses",),
                                   "required when inbound_auth is true (a trunk's calls are "
                                   "recognised by address first, then challenged)"))
        _raise_violations(violations)
        return self


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"{value!r} is not a valid regular expression: {exc}") from None
    return value


Regex = Annotated[str, AfterValidator(_regex), Expect("a regular expression, like '^0[1-9]'")]


class DialRuleConfig(Section):
    """One rule of the dial plan: who may dial numbers matching `pattern`, through which trunk.

    Rules are searched in order on the dialled number normalised to E.164 (`+4930…`; short
    codes such as `112` as dialled: see pbx.trunk.dialplan), so patterns are written against
    E.164 (`^\\+49900`); the first match decides. A number no rule matches is refused
    (toll-fraud protection: premium-rate and international numbers stay blocked unless a rule
    allows them).
    """

    name: NonEmptyStr
    pattern: Regex
    allow: tuple[Role, ...] = ("agent", "supervisor", "admin")
    agents: tuple[Extension, ...] = ()  # further agents allowed regardless of role
    trunk: TrunkName | None = None  # default: the first trunk


def _default_dial_plan() -> tuple[DialRuleConfig, ...]:
    # A German plan on E.164 (the same as config/pbx.yaml ships): emergency, public-service and
    # domestic (geographic and mobile) numbers for everyone; every premium-rate or special
    # range for nobody; international numbers for supervisors and admins only.
    nobody: tuple[Role, ...] = ()
    return (
        DialRuleConfig(name="emergency", pattern=r"^(110|112)$"),
        DialRuleConfig(name="public-service", pattern=r"^(115|116[0-9]{3})$"),
        DialRuleConfig(name="premium-rate", pattern=r"^\+49(900|19)", allow=nobody),
        DialRuleConfig(name="mass-calling", pattern=r"^\+4913[78]", allow=nobody),
        DialRuleConfig(name="service-number", pattern=r"^\+4918", allow=nobody),
        DialRuleConfig(name="directory-enquiries", pattern=r"^(\+49)?118", allow=nobody),
        DialRuleConfig(name="personal-number", pattern=r"^\+49700", allow=nobody),
        DialRuleConfig(name="innovative-services", pattern=r"^\+4912", allow=nobody),
        DialRuleConfig(name="international", pattern=r"^\+(?!49)",
                       allow=("supervisor", "admin")),
        DialRuleConfig(name="domestic",
                       pattern=r"^\+49((?![789]00)[2-9][0-9]{5,12}|1[5-7][0-9]{8,11})$"),
    )


class HoldProgramConfig(Section):
    """What callers hear while they wait: music looping, interrupted every `interval_s` by the
    next announcement or product ad (in turn). Prompt names may use {lang}."""

    music: tuple[NonEmptyStr, ...] = ("music/hold_music",)
    announcements: tuple[NonEmptyStr, ...] = ("{lang}/please_hold",)
    ads: tuple[NonEmptyStr, ...] = ("{lang}/ad_1", "{lang}/ad_2", "{lang}/ad_3")
    interval_s: Annotated[float, Field(gt=0)] = 30.0
    first_insert_after_s: Annotated[float, Field(ge=0)] | None = None
    shuffle_ads: bool = False


def _default_hold_programs() -> dict[str, HoldProgramConfig]:
    return {"default": HoldProgramConfig()}


# --- CTI: screen-pop forms ("masks") and the agent desktop ------------------------------------

Permission = Literal["hidden", "read_only", "read_write"]
FieldType = Literal["text", "number", "date", "select", "textarea", "checkbox"]

_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_IVR_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*$")
# Customer record attributes a form can show, and the ones a save may change. The customer
# number is the record's key and the lists (phones, groups, pinned agents) feed routing; the
# forms show them but never write them.
CUSTOMER_ATTRIBUTES = ("customer_no", "name", "status", "language", "phone_numbers", "groups",
                       "pinned_agents")
WRITABLE_CUSTOMER_ATTRIBUTES = ("name", "status", "language")
# Values the CTI computes from the call itself (`call.<name>`); never writable.
COMPUTED_SOURCES = ("id", "caller", "did", "queue", "flow", "agent", "waited_s", "offered_at")


def _field_name(value: str) -> str:
    if not _FIELD_NAME.match(value):
        raise ValueError(f"{value!r} is not a field name (letters, digits, '_')")
    return value


def _field_source(value: str) -> str:
    # customer.<attribute> | customer.fields.<key> | call.<computed> | an IVR variable name
    if value.startswith("customer."):
        rest = value.removeprefix("customer.")
        if rest.startswith("fields.") and _FIELD_NAME.match(rest.removeprefix("fields.")):
            return value
        if rest not in CUSTOMER_ATTRIBUTES:
            raise ValueError(
                f"{value!r} is not a customer field (customer.fields.KEY or customer."
                f"{{{','.join(CUSTOMER_ATTRIBUTES)}}})"
            )
        return value
    if value.startswith("call."):
        if value.removeprefix("call.") not in COMPUTED_SOURCES:
            raise ValueError(
                f"{value!r} is not a computed value (call.{{{','.join(COMPUTED_SOURCES)}}})"
            )
        return value
    if not _IVR_VARIABLE.match(value):
        raise ValueError(f"{value!r} is not an IVR variable name (like customer_no)")
    return value


def source_is_writable(source: str | None) -> bool:
    """Whether a save may write a field fed from `source`: customer fields and the writable
    customer attributes, IVR variables and source-less fields (kept with the call); never
    computed values or the customer's key and lists."""
    if source is None:
        return True
    if source.startswith("customer."):
        rest = source.removeprefix("customer.")
        return rest.startswith("fields.") or rest in WRITABLE_CUSTOMER_ATTRIBUTES
    return not source.startswith("call.")


FieldName = Annotated[str, AfterValidator(_field_name), Expect("a field name, like contract")]
FieldSource = Annotated[
    str,
    AfterValidator(_field_source),
    Expect("an IVR variable (concern), a customer field (customer.fields.contract) or a "
           "computed value (call.waited_s)"),
]


class FieldPermissions(Section):
    """Who may see and change a form field. The most specific rule wins: a rule for the agent's
    extension, else the agent's groups (the most permissive of them), else the agent's role,
    else `default` (see `pbx.cti.permissions`)."""

    default: Permission = "read_only"
    roles: dict[Role, Permission] = Field(default_factory=dict)
    groups: dict[NonEmptyStr, Permission] = Field(default_factory=dict)
    agents: dict[Extension, Permission] = Field(default_factory=dict)


class FieldValidation(Section):
    """Checks a saved value must pass (the whole value must match `pattern`)."""

    required: bool = False
    pattern: Regex | None = None
    min_length: Annotated[int, Field(ge=0)] | None = None
    max_length: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        violations: list[tuple[Loc, str]] = []
        if (self.min_length is not None and self.max_length is not None
                and self.min_length > self.max_length):
            violations.append(
                (("min_length",), f"{self.min_length} is above max_length ({self.max_length})")
            )
        _raise_violations(violations)
        return self


class FormFieldConfig(Section):
    """One field of a form: where its value comes from, how it is shown and who may change it."""

    name: FieldName
    label: NonEmptyStr | None = None  # default: the name
    type: FieldType = "text"
    options: tuple[NonEmptyStr, ...] = ()  # the choices of a select
    source: FieldSource | None = None  # None: a value the agent enters, kept with the call
    validation: FieldValidation = Field(default_factory=FieldValidation)
    permissions: FieldPermissions = Field(default_factory=FieldPermissions)

    @model_validator(mode="after")
    def _check(self) -> Self:
        violations: list[tuple[Loc, str]] = []
        if self.type == "select" and not self.options:
            violations.append((("options",), "a select needs at least one option"))
        if self.type != "select" and self.options:
            violations.append((("options",), f"only a select has options (type is {self.type})"))
        for index in _repeats(self.options):
            violations.append((("options", index), f"{self.options[index]!r} is listed twice"))
        if not source_is_writable(self.source):
            rules = self.permissions
            grants: list[tuple[Loc, Permission]] = [(("default",), rules.default)]
            for key, table in (("roles", rules.roles), ("groups", rules.groups),
                               ("agents", rules.agents)):
                grants += [((key, name), level) for name, level in table.items()]
            for loc, level in grants:
                if level == "read_write":
                    violations.append(
                        (("permissions", *loc),
                         f"{self.source} cannot be written; use read_only or hidden")
                    )
        _raise_violations(violations)
        return self

    @property
    def shown_label(self) -> str:
        return self.label or self.name


class FormConfig(Section):
    """``forms.<name>`` — the screen-pop form ("mask") for the queue or flow of that name;
    ``forms.default`` serves every call whose queue and flow have none."""

    title: NonEmptyStr | None = None
    fields: tuple[FormFieldConfig, ...] = Field(min_length=1)

    @field_validator("fields")
    @classmethod
    def _unique_names(cls, fields: tuple[FormFieldConfig, ...]) -> tuple[FormFieldConfig, ...]:
        _raise_violations(_duplicates(fields, "fields", "name"))
        return fields

    def field(self, name: str) -> FormFieldConfig | None:
        return next((f for f in self.fields if f.name == name), None)


def _cookie_secure(value: object) -> bool | Literal["auto"]:
    if isinstance(value, bool):
        return value
    if value == "auto":
        return "auto"
    raise ValueError(f"{value!r} is not true, false or auto")


CookieSecure = Annotated[
    bool | Literal["auto"], PlainValidator(_cookie_secure), Expect("true, false or auto")
]


class DeskLabels(Section):
    """A text in each desk language (``{de: Pause, en: Break}``); a missing one falls back."""

    de: NonEmptyStr | None = None
    en: NonEmptyStr | None = None


class PauseCodeConfig(Section):
    """``cti.pause_codes[]`` — a reason an agent may pause for: `code` is what the API and the
    reports use, `label` what the desk shows (`labels` per desk language, e.g. ``{de: Pause,
    en: Break}``, where the desk's language has one), `productive` whether reports count the
    time as work (training, back office) rather than away (break, lunch)."""

    code: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
    label: NonEmptyStr
    labels: DeskLabels = Field(default_factory=DeskLabels)
    productive: bool = False

    def label_in(self, language: DeskLanguage) -> str:
        """The label the desk shows in `language`."""
        return getattr(self.labels, language) or self.label


def _default_pause_codes() -> tuple[PauseCodeConfig, ...]:
    return (
        PauseCodeConfig(code="break", label="Break", labels=DeskLabels(de="Pause", en="Break")),
        PauseCodeConfig(code="lunch", label="Lunch",
                        labels=DeskLabels(de="Mittagspause", en="Lunch")),
        PauseCodeConfig(code="meeting", label="Meeting", productive=True,
                        labels=DeskLabels(de="Besprechung", en="Meeting")),
        PauseCodeConfig(code="training", label="Training", productive=True,
                        labels=DeskLabels(de="Schulung", en="Training")),
    )


class FeatureCodesConfig(Section):
    """``feature_codes:`` — what an agent dials on their phone to change their state: the
    PBX answers, does it and confirms with a tone (two high beeps: done; one low beep: the
    ACD refused, e.g. already logged in), then hangs up. null turns a code off."""

    login: FeatureCode | None = "*45"
    logout: FeatureCode | None = "*46"
    pause: FeatureCode | None = "*47"
    ready: FeatureCode | None = "*48"

    @model_validator(mode="after")
    def _check(self) -> Self:
        seen: dict[str, str] = {}
        violations: list[tuple[Loc, str]] = []
        for name in ("login", "logout", "pause", "ready"):
            code = getattr(self, name)
            if code is not None and code in seen:
                violations.append(((name,), f"{code!r} is also {seen[code]}"))
            elif code is not None:
                seen[code] = name
        _raise_violations(violations)
        return self


def _default_dispositions() -> tuple[str, ...]:
    return ("resolved", "callback", "escalated", "wrong_number")


class CtiConfig(Section):
    """``cti:`` — agent desktop sessions and logins.

    Agents log in with their extension and their desktop password: the agent's
    ``desk_password_hash`` when set, else its SIP password (stored in the database only as a
    scrypt hash, cost 2**`password_cost`). A session lasts `session_lifetime_s` from login and
    ends when the agent's password changes. Browsers hold it in a ``SameSite=Strict`` cookie
    (``Secure`` per `cookie_secure`: true, false, or ``auto`` — when the request came over
    HTTPS, directly or per ``X-Forwarded-Proto`` of a trusted proxy) and send `csrf_header`
    with every state-changing request; API clients send ``Authorization: Bearer TOKEN``
    instead. `max_login_failures` within `login_failure_window_s` from one address block it
    for `login_ban_s`; `max_account_failures` within `account_failure_window_s` for one
    extension (from anywhere; known or not) lock it for `account_lock_s`, except for logins
    from ``http.trusted_networks``. Customer search needs `search_min_chars` characters.
    The desk speaks the browser's language when it is one of `DeskLanguage`, else
    `language`; the agent's own choice on the page overrides both.
    """

    language: DeskLanguage = "de"

    session_lifetime_s: Seconds = 12 * 3600
    cookie_secure: CookieSecure = "auto"
    csrf_header: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9-]{0,63}$")] = "X-CSRF-Token"
    password_cost: Annotated[int, Field(ge=10, le=20)] = 14
    max_login_failures: Annotated[int, Field(ge=1)] = 5
    login_failure_window_s: Seconds = 300
    login_ban_s: Seconds = 300
    max_account_failures: Annotated[int, Field(ge=1)] = 10
    account_failure_window_s: Seconds = 600
    account_lock_s: Seconds = 300
    search_min_chars: Annotated[int, Field(ge=2, le=32)] = 3
    dispositions: tuple[NonEmptyStr, ...] = Field(
        default_factory=_default_dispositions, min_length=1
    )
    service_level_s: Seconds = 20
    pause_codes: tuple[PauseCodeConfig, ...] = Field(
        default_factory=_default_pause_codes, min_length=1
    )

    @field_validator("pause_codes")
    @classmethod
    def _unique_pause_codes(
        cls, codes: tuple[PauseCodeConfig, ...]
    ) -> tuple[PauseCodeConfig, ...]:
        _raise_violations(_duplicates(codes, "pause_codes", "code"))
        return codes


class ReportsConfig(Section):
    """``reports:`` — `timezone` (an IANA name): the zone report times are shown in (ISO 8601
    with its offset), report periods of an hour or a day follow, and times without a zone in
    a report's ``from``/``to`` are read in."""

    timezone: TimeZoneName = "UTC"


class PbxConfig(Section):
    """The whole configuration file. Only ``sip.domain`` and ``agents`` are required."""

    pbx: GeneralConfig = Field(default_factory=GeneralConfig)
    sip: Annotated[SipConfig, Expect("a mapping with at least the key domain")]
    registrar: RegistrarConfig = Field(default_factory=RegistrarConfig)
    security: SecurityConfig = Field(default_factory=SecurityConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    media: MediaConfig = Field(default_factory=MediaConfig)
    recording: RecordingConfig = Field(default_factory=RecordingConfig)
    agents: Annotated[
        tuple[AgentConfig, ...], Expect("a list of agents, each with extension, name, password")
    ]
    trunks: tuple[TrunkConfig, ...] = ()
    dids: tuple[DidRoute, ...] = ()
    flows: dict[str, FlowConfig] = Field(default_factory=dict)
    customers: tuple[CustomerSeed, ...] = ()
    dial_plan: tuple[DialRuleConfig, ...] = Field(default_factory=_default_dial_plan)
    forms: dict[FieldName, FormConfig] = Field(default_factory=dict)
    cti: CtiConfig = Field(default_factory=CtiConfig)
    queues: tuple[QueueConfig, ...] = ()
    customer_statuses: dict[str, CustomerStatusConfig] = Field(default_factory=dict)
    hold_programs: dict[str, HoldProgramConfig] = Field(default_factory=_default_hold_programs)
    campaigns: tuple[CampaignConfig, ...] = ()
    dnc: DncConfig = Field(default_factory=DncConfig)
    feature_codes: FeatureCodesConfig = Field(default_factory=FeatureCodesConfig)
    reports: ReportsConfig = Field(default_factory=ReportsConfig)

    @field_validator("agents")
    @classmethod
    def _unique_extensions(cls, agents: tuple[AgentConfig, ...]) -> tuple[AgentConfig, ...]:
        _raise_violations(_duplicates(agents, "agents", "extension"))
        return agents

    @field_validator("trunks")
    @classmethod
    def _unique_trunk_names(cls, trunks: tuple[TrunkConfig, ...]) -> tuple[TrunkConfig, ...]:
        _raise_violations(_duplicates(trunks, "trunks", "name"))
        return trunks

    @model_validator(mode="after")
    def _check(self) -> Self:
        violations: list[tuple[Loc, str]] = []
        for index, entry in enumerate(self.sip.listen):
            if entry.transport == "tcp" and (entry.host, entry.port) == (
                self.http.host,
                self.http.port,
            ):
                violations.append(
                    (("http", "port"), f"{self.http.port} is also sip.listen[{index}] (tcp)")
                )
        _raise_violations(violations)
        return self

    @model_validator(mode="after")
    def _check_desk_hashes(self) -> Self:
        # A desk hash of another cost than the dummy every other login attempt verifies would
        # make this agent's logins take a different time: a hint that the extension exists.
        violations: list[tuple[Loc, str]] = []
        cost = self.cti.password_cost
        for index, agent in enumerate(self.agents):
            hashed = agent.desk_password_hash
            if hashed is not None and hashed.split("$")[1] != str(cost):
                violations.append((
                    ("agents", index, "desk_password_hash"),
                    f"made with cost {hashed.split('$')[1]}, but cti.password_cost is {cost}; "
                    f"hash it again with `pbx hash-password --cost {cost}`",
                ))
        _raise_violations(violations)
        return self

    @model_validator(mode="after")
    def _check_forms(self) -> Self:
        # Permission rules must name agents and groups that exist (a typo would silently
        # fall back to a broader rule).
        extensions = {agent.extension for agent in self.agents}
        groups = {group for agent in self.agents for group in agent.groups}
        violations: list[tuple[Loc, str]] = []
        for form_name, form in self.forms.items():
            for index, form_field in enumerate(form.fields):
                loc: Loc = ("forms", form_name, "fields", index, "permissions")
                for extension in form_field.permissions.agents:
                    if extension not in extensions:
                        violations.append(
                            ((*loc, "agents", extension), f"no agent with extension {extension!r}")
                        )
                for group in form_field.permissions.groups:
                    if group not in groups:
                        violations.append(
                            ((*loc, "groups", group), f"no agent is in group {group!r}")
                        )
        _raise_violations(violations)
        return self

    @property
    def database_url(self) -> str:
        """The database URL; ``{data_dir}`` in it is replaced by ``pbx.data_dir``."""
        url = self.database.url or "sqlite:///{data_dir}/pbx.db"
        return url.replace("{data_dir}", self.pbx.data_dir)

    @property
    def realm(self) -> str:
        """The digest realm: the SIP domain."""
        return self.sip.domain

    def agent(self, extension: str) -> AgentConfig | None:
        """The agent with this extension, or None."""
        return next((a for a in self.agents if a.extension == extension), None)

    def effective_queues(self) -> tuple[QueueConfig, ...]:
        """The configured queues; without any, one `linear` queue per agent group (members in
        extension order), so a small installation needs no queue section at all."""
        if self.queues:
            return self.queues
        groups: dict[str, list[str]] = {}
        for agent in self.agents:
            if agent.enabled:
                for group in agent.groups:
                    groups.setdefault(group, []).append(agent.extension)
        return tuple(
            QueueConfig.model_validate(
                {"name": name, "members": [{"agent": ext} for ext in sorted(members)]})
            for name, members in sorted(groups.items())
        )

    def agent_records(self) -> list[AgentRecord]:
        """All agents as storage records (HA1s in this configuration's realm)."""
        return [agent.to_record(self.realm) for agent in self.agents]


def _repeats(values: tuple[str, ...]) -> list[int]:
    # Indexes of values that already appeared earlier in the tuple.
    seen: set[str] = set()
    out = []
    for index, value in enumerate(values):
        if value in seen:
            out.append(index)
        seen.add(value)
    return out


def _duplicates(items: tuple[Section, ...], section: str, key: str) -> list[tuple[Loc, str]]:
    values = [str(getattr(item, key)) for item in items]
    counts = Counter(values)
    first: dict[str, int] = {}
    out: list[tuple[Loc, str]] = []
    for index, value in enumerate(values):
        if counts[value] > 1 and value in first:
            message = f"duplicate {key} {value!r} (first at {section}[{first[value]}])"
            out.append(((index, key), message))
        first.setdefault(value, index)
    return out


def redact_url(url: str) -> str:
    """`url` with any password replaced by ``***`` (for logs and summaries)."""
    return re.sub(r"^([A-Za-z0-9+.-]+://[^:/@]*):[^@/]*@", r"\1:***@", url)


def summarize(config: PbxConfig) -> str:
    """A few lines describing a valid configuration, for ``pbx check-config``."""
    roles = Counter(agent.role for agent in config.agents)
    enabled = sum(agent.enabled for agent in config.agents)
    role_text = ", ".join(f"{count} {role}" for role, count in sorted(roles.items()))
    trunks = ", ".join(f"{t.name} ({t.transport} {t.host}:{t.port})" for t in config.trunks)
    lines = [
        f"{config.pbx.name}: configuration is valid",
        f"  SIP domain {config.sip.domain}, listening on "
        + ", ".join(entry.describe() for entry in config.sip.listen),
        f"  agents: {len(config.agents)} ({role_text or 'none'}; {enabled} enabled)",
        f"  trunks: {len(config.trunks)}" + (f" — {trunks}" if trunks else ""),
        f"  HTTP: {config.http.host}:{config.http.port}; trusted proxies: "
        + (", ".join(config.http.trusted_proxies) or "none") + "; API tokens: "
        + (", ".join(f"{t.name} ({', '.join(t.scopes)})" for t in config.http.api_tokens)
           or "none"),
        f"  database: {redact_url(config.database_url)}",
        f"  prompts: {config.media.prompts_path}",
    ]
    return "\n".join(lines)
