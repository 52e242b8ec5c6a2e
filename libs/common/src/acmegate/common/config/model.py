"""The shape of acmegate's one YAML configuration (docs/configuration.md describes every key).

The objects of the product guide are declared here: certificate authorities, certificate
templates, key attestation providers, device management platforms, signal sources, lookup
policies ("security signal sources"), policy workflows, device roles and enrollment policies.
Unknown keys are errors, so a typo is reported with its path instead of silently ignored.
"""

from __future__ import annotations

import ipaddress
from typing import Literal
from urllib.parse import urlsplit

import msgspec

from acmegate.common.config.durations import parse_duration
from acmegate.common.config.secrets import Secret


class _Base(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


def _seconds(value: int | str) -> int:
    return parse_duration(value)


# --- infrastructure ------------------------------------------------------------------------


class TlsConfig(_Base, frozen=True, kw_only=True):
    certificate: str
    key: str


def _check_networks(networks: list[str]) -> None:
    for network in networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise ValueError(
                f"trusted_proxies: {network!r} is not an IP address or network (CIDR)"
            ) from None


class _Listener(_Base, frozen=True, kw_only=True):
    """What the ACME and the admin listener share: where they listen, how clients reach
    them (TLS here or at a proxy in front), and which proxies they believe."""

    host: str = "127.0.0.1"
    port: int
    # The URL clients use (behind a load balancer or TLS proxy); default http(s)://host:port.
    external_url: str | None = None
    # Serve HTTPS directly (PEM certificate chain and key).
    tls: TlsConfig | None = None
    # Peers (addresses or CIDR networks) whose X-Forwarded-For / X-Forwarded-Proto are
    # believed: the load balancer or ingress in front of the listener.
    trusted_proxies: list[str] = msgspec.field(default_factory=list)
    # Strict-Transport-Security max-age on responses served over https (0: no header).
    hsts_max_age: int | str = "1y"

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError("port must be between 1 and 65535")
        if self.external_url is not None:
            parts = urlsplit(self.external_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError("external_url must be an absolute http(s) URL")
            if parts.path not in ("", "/") or parts.query or parts.fragment:
                raise ValueError("external_url must have no path, query or fragment")
        _check_networks(self.trusted_proxies)
        _seconds(self.hsts_max_age)

    @property
    def base_url(self) -> str:
        """The external URL, or the one this listener's own host, port and TLS make."""
        if self.external_url:
            return self.external_url.rstrip("/")
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}:{self.port}"


class ServerConfig(_Listener, frozen=True, kw_only=True):
    """The ACME listener. Every URL the gateway writes starts with its ``base_url``; a JWS
    ``url`` must match it (RFC 8555 §6.4)."""

    port: int = 8443
    max_body_bytes: int = 64 * 1024
    # How long finalize / challenge POSTs wait for the pipeline before answering `processing`.
    finalize_wait: int | str = "3s"
    challenge_wait: int | str = "3s"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_body_bytes < 1024:
            raise ValueError("max_body_bytes must be at least 1024")
        _seconds(self.finalize_wait)
        _seconds(self.challenge_wait)


class AdminConfig(_Listener, frozen=True, kw_only=True):
    """The admin listener: REST API, OpenAPI document, dashboard (bearer token). Plain HTTP
    belongs on loopback only; an https ``base_url`` makes the session cookie Secure."""

    enabled: bool = True
    port: int = 9443
    token: Secret | None = None


class EmbeddedDatabase(_Base, frozen=True, kw_only=True):
    """PostgreSQL started in-process through the ``pgserver`` wheel (standalone only)."""

    data_dir: str = "var/postgres"


class DatabaseConfig(_Base, frozen=True, kw_only=True):
    url: str | Secret | None = None
    embedded: EmbeddedDatabase | None = None
    pool_min: int = 2
    pool_max: int = 20
    statement_timeout: int | str = "10s"

    def __post_init__(self) -> None:
        if isinstance(self.url, str) and urlsplit(self.url).password:
            raise ValueError(
                "a database URL with a password belongs in `{env: ...}` or `{file: ...}`"
            )
        if not 1 <= self.pool_min <= self.pool_max:
            raise ValueError("need 1 <= pool_min <= pool_max")
        _seconds(self.statement_timeout)


class BusConfig(_Base, frozen=True, kw_only=True):
    url: str | Secret | None = None
    namespace: str = "acmegate"
    max_deliveries: int = 10
    prefetch: int = 64

    def __post_init__(self) -> None:
        if isinstance(self.url, str) and urlsplit(self.url).password not in (None, "guest"):
            raise ValueError("an AMQP URL with a password belongs in `{env: ...}` or `{file: ...}`")
        if not self.namespace.replace("-", "").replace("_", "").isalnum():
            raise ValueError("namespace may hold letters, digits, '-' and '_' only")


class AcmeConfig(_Base, frozen=True, kw_only=True):
    """RFC 8555 object lifetimes and the reliability budget of the pipeline."""

    order_lifetime: int | str = "1d"
    authorization_lifetime: int | str = "1d"
    nonce_lifetime: int | str = "10m"
    # An order or challenge still processing after this is failed by the sweeper.
    processing_budget: int | str = "5m"
    # Work with no result after this is published again (every stage is idempotent).
    republish_after: int | str = "30s"
    sweep_interval: int | str = "5s"
    nonce_key: Secret | None = None
    terms_of_service: str | None = None
    website: str | None = None
    # RFC 8555 §7.3.4: server-certificate clients must bind their account to an admin-issued
    # EAB key (the server directory says externalAccountRequired). The device directory stays
    # open: Apple's ACME client cannot send an EAB (docs/server-certificates.md).
    external_account_required: bool = False
    # Where the HMAC keys of EAB key ids are derived from (HMAC-SHA256(secret, kid)); without
    # it a random secret kept in acme.settings is used.
    eab_secret: Secret | None = None

    def __post_init__(self) -> None:
        for value in (
            self.order_lifetime,
            self.authorization_lifetime,
            self.nonce_lifetime,
            self.processing_budget,
            self.republish_after,
            self.sweep_interval,
        ):
            if _seconds(value) <= 0:
                raise ValueError("lifetimes and intervals must be positive")


class RateLimit(_Base, frozen=True, kw_only=True):
    """At most ``limit`` events per ``period``, refilled evenly (one every period/limit)."""

    limit: int
    period: int | str = "1h"

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError("limit must be at least 1 (write null to turn a limit off)")
        if _seconds(self.period) <= 0:
            raise ValueError("period must be positive")


class RateLimitsConfig(_Base, frozen=True, kw_only=True):
    """Limits of the public endpoints, shared by every frontend replica (counters in
    PostgreSQL). ``null`` turns one off."""

    new_accounts_per_ip: RateLimit | None = msgspec.field(
        default_factory=lambda: RateLimit(limit=100, period="1h")
    )
    new_orders_per_account: RateLimit | None = msgspec.field(
        default_factory=lambda: RateLimit(limit=30, period="1h")
    )
    failed_validations_per_device: RateLimit | None = msgspec.field(
        default_factory=lambda: RateLimit(limit=10, period="1h")
    )
    failed_admin_logins_per_ip: RateLimit | None = msgspec.field(
        default_factory=lambda: RateLimit(limit=10, period="1h")
    )


class RetentionConfig(_Base, frozen=True, kw_only=True):
    """How long finished records are kept before the sweeper (frontend) and the policy
    service purge them. ``null`` keeps a kind forever."""

    # Orders (with their authorization and challenge), counted from the order's expiry.
    orders: int | str | None = "30d"
    # Accounts that hold no order (hence no certificate), counted from their creation.
    accounts: int | str | None = "30d"
    # The chains of delivered certificates (acme.certificates), counted from notAfter.
    certificates: int | str | None = "30d"
    enrollment_events: int | str | None = "90d"
    # The policy service's signal-source lookup audit (policy.lookups).
    lookups: int | str | None = "90d"
    # How often each replica purges, and the most rows one statement deletes.
    interval: int | str = "1m"
    batch: int = 1000

    def __post_init__(self) -> None:
        for value in (
            self.orders,
            self.accounts,
            self.certificates,
            self.enrollment_events,
            self.lookups,
        ):
            if value is not None and _seconds(value) <= 0:
                raise ValueError("retention periods must be positive (null keeps forever)")
        if _seconds(self.interval) <= 0:
            raise ValueError("interval must be positive")
        if not 1 <= self.batch <= 100_000:
            raise ValueError("batch must be between 1 and 100000")


class LoggingConfig(_Base, frozen=True, kw_only=True):
    level: Literal["debug", "info", "warning", "error"] = "info"
    json: bool = True
    # One line per HTTP request on every listener (method, route, status, duration).
    access_log: bool = True


class HealthConfig(_Base, frozen=True, kw_only=True):
    """The health listener of each process: ``/healthz``, ``/readyz`` and ``/metrics``."""

    # Probes and Prometheus come from outside the pod; `acmegate run --health-host` overrides.
    host: str = "0.0.0.0"  # noqa: S104
    # 0: no listener (`acmegate run --health-port` / ACMEGATE_HEALTH_PORT override).
    port: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.port < 65536:
            raise ValueError("port must be between 0 (off) and 65535")


class TracingConfig(_Base, frozen=True, kw_only=True):
    """OpenTelemetry traces: one enrollment request followed across the four services."""

    enabled: bool = False
    # `otlp`: OTLP over HTTP/protobuf to `endpoint`; `console`: JSON on stdout; `none`:
    # spans are made (and propagated) but not exported.
    exporter: Literal["otlp", "console", "none"] = "otlp"
    # The OTLP/HTTP traces URL; default: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or the SDK's
    # http://localhost:4318/v1/traces.
    endpoint: str | None = None
    # The share of new traces recorded (a request that arrives with a sampled parent is kept).
    sample_ratio: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.sample_ratio <= 1.0:
            raise ValueError("sample_ratio must be between 0 and 1")
        if self.endpoint is not None:
            parts = urlsplit(self.endpoint)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError("endpoint must be an absolute http(s) URL")


class StartupConfig(_Base, frozen=True, kw_only=True):
    """How a starting service treats an unreachable PostgreSQL or RabbitMQ."""

    # Keep retrying (with backoff, logging each attempt) this long, then exit 1; 0: no retry.
    retry_for: int | str = "2m"

    def __post_init__(self) -> None:
        _seconds(self.retry_for)


# --- PKI -----------------------------------------------------------------------------------


class FileKey(_Base, frozen=True, kw_only=True, tag="file", tag_field="type"):
    """An encrypted PKCS#8 PEM file; the passphrase comes from env or a file."""

    path: str
    passphrase: Secret


class Pkcs11Key(_Base, frozen=True, kw_only=True, tag="pkcs11", tag_field="type"):
    """A key inside a PKCS#11 token (e.g. SoftHSM2, an HSM): it never enters the process."""

    module: str
    token_label: str
    key_label: str
    pin: Secret


class CrlConfig(_Base, frozen=True, kw_only=True):
    """A CA's CRL: published at ``{pki.base_url}/crl/<ca>.crl`` (RFC 5280 §5)."""

    enabled: bool = True
    # nextUpdate = thisUpdate + validity.
    validity: int | str = "7d"
    # A new CRL at least this often, and within seconds of any revocation.
    regenerate_every: int | str = "1h"

    def __post_init__(self) -> None:
        if _seconds(self.regenerate_every) <= 0:
            raise ValueError("regenerate_every must be positive")
        if _seconds(self.validity) <= _seconds(self.regenerate_every):
            raise ValueError("validity must be longer than regenerate_every")


class CertificateAuthorityConfig(_Base, frozen=True, kw_only=True):
    """The guide's "Creating an Intermediate CA": an issuing CA and where its key lives."""

    name: str
    description: str = ""
    certificate: str
    chain: list[str] = msgspec.field(default_factory=list)
    key: FileKey | Pkcs11Key
    crl: CrlConfig = msgspec.field(default_factory=CrlConfig)
    ocsp: bool = True


class PkiConfig(_Base, frozen=True, kw_only=True):
    """The signer's PKI HTTP listener: CRLs, CA certificates and an OCSP responder (RFC 6960).

    With ``base_url`` set, every issued certificate names ``{base_url}/crl/<ca>.crl`` as its
    CRL distribution point and ``{base_url}/ocsp/<ca>`` / ``{base_url}/ca/<ca>.cer`` in its
    authority information access (RFC 5280 §4.2.1.13, §4.2.2.1).
    """

    host: str = "127.0.0.1"
    port: int = 8080
    # The plain-HTTP URL relying parties (RADIUS servers) reach the listener at.
    base_url: str | None = None
    # Whether this process serves HTTP (off: CRLs are still generated and stored). Off on a
    # second signer replica of the same host, or `reuse_port` on every replica.
    listen: bool = True
    # SO_REUSEPORT: replicas on one host share pki.port, the kernel spreads connections
    # (Linux, BSD; every process must set it).
    reuse_port: bool = False
    # nextUpdate of OCSP responses (each is reused for the first half of it).
    ocsp_validity: int | str = "1h"
    # How often the signer looks for revocations newer than a CA's current CRL.
    crl_check_interval: int | str = "5s"

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError("port must be between 1 and 65535")
        if self.base_url is not None:
            parts = urlsplit(self.base_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError("base_url must be an absolute http(s) URL")
            if parts.query or parts.fragment:
                raise ValueError("base_url must have no query or fragment")
        if _seconds(self.ocsp_validity) <= 0 or _seconds(self.crl_check_interval) <= 0:
            raise ValueError("ocsp_validity and crl_check_interval must be positive")


class SanTemplate(_Base, frozen=True, kw_only=True):
    """SAN entries; each value may use ``${/...}`` variables and may yield several names."""

    dns: list[str] = msgspec.field(default_factory=list)
    rfc822: list[str] = msgspec.field(default_factory=list)
    uri: list[str] = msgspec.field(default_factory=list)
    ip: list[str] = msgspec.field(default_factory=list)
    # The guide's "Other Name" field: a Microsoft UPN otherName (1.3.6.1.4.1.311.20.2.3).
    other_name: list[str] = msgspec.field(default_factory=list)
    # RFC 4043 PermanentIdentifier otherName (1.3.6.1.5.5.7.8.3), the device-attest identity.
    permanent_identifier: list[str] = msgspec.field(default_factory=list)


class CsrValueRule(_Base, frozen=True, kw_only=True):
    """What a value the CSR supplies must be before a template copies it into a certificate.

    A value passes if it equals one of ``equals`` or fully matches one of ``matches``. Both
    may use variables of the attestation, the order and the signal source (never of the CSR):
    in ``matches`` their values are regex-escaped before the pattern is compiled.
    """

    equals: str | list[str] = msgspec.field(default_factory=list)
    matches: str | list[str] = msgspec.field(default_factory=list)

    @property
    def equals_list(self) -> list[str]:
        """``equals`` as a list (a single value may be written without brackets)."""
        return [self.equals] if isinstance(self.equals, str) else list(self.equals)

    @property
    def matches_list(self) -> list[str]:
        """``matches`` as a list (a single pattern may be written without brackets)."""
        return [self.matches] if isinstance(self.matches, str) else list(self.matches)


KeyUsageName = Literal[
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
]


class CertificateTemplateConfig(_Base, frozen=True, kw_only=True):
    """The guide's "Creating a Certificate Template"."""

    name: str
    description: str = ""
    # A DN such as "CN=${/csr/subject/commonname},O=Example"; RDNs in the order written.
    subject: str = "CN=${/csr/subject/commonname}"
    san: SanTemplate = msgspec.field(default_factory=SanTemplate)
    # Entries whose value renders empty are an issuance error, not silently dropped.
    required: list[str] = msgspec.field(default_factory=list)
    # ${/csr/...} variable path → the rule its values must pass to reach the certificate.
    csr_rules: dict[str, CsrValueRule] = msgspec.field(default_factory=dict)
    validity: int | str = "365d"
    signature_algorithm: Literal["sha256", "sha384", "sha512"] = "sha256"
    key_usage: list[KeyUsageName] = msgspec.field(default_factory=lambda: ["digital_signature"])
    # Names (client_auth, server_auth, email_protection, code_signing, …) or dotted OIDs.
    extended_key_usage: list[str] = msgspec.field(default_factory=lambda: ["client_auth"])

    def __post_init__(self) -> None:
        if _seconds(self.validity) < 3600:
            raise ValueError("validity must be at least one hour")


# --- attestation ---------------------------------------------------------------------------


class AttestationProviderConfig(_Base, frozen=True, kw_only=True):
    """The guide's "Key Attestation Provider" (type Apple)."""

    name: str
    description: str = ""
    type: Literal["apple"] = "apple"
    # PEM files of trusted roots; empty means Apple's real Enterprise Attestation Root CA.
    roots: list[str] = msgspec.field(default_factory=list)
    # Which attested identifier an order's permanent-identifier may equal.
    identifier_match: Literal["serial_or_udid", "serial", "udid"] = "serial_or_udid"
    # `identifier`: a CSR common name, if any, must be the identifier or an attested one
    # (step-ca's rule); `any`: the template decides what reaches the certificate.
    csr_common_name: Literal["identifier", "any"] = "identifier"


# --- signal sources and policies -------------------------------------------------------------


class InventoryDevice(_Base, frozen=True, kw_only=True):
    serial_number: str
    udid: str | None = None
    managed: bool = True
    attributes: dict[str, str] = msgspec.field(default_factory=dict)
    groups: list[str] = msgspec.field(default_factory=list)


class StaticSourceConfig(_Base, frozen=True, kw_only=True, tag="static", tag_field="type"):
    """A YAML list of devices, so the gateway works without an MDM."""

    name: str
    description: str = ""
    devices: list[InventoryDevice] = msgspec.field(default_factory=list)
    # Alternatively a separate YAML file holding such a list (reloaded on change).
    file: str | None = None


class ClientCredentialsAuth(
    _Base, frozen=True, kw_only=True, tag="client_credentials", tag_field="type"
):
    client_id: str
    client_secret: Secret


class BearerTokenAuth(_Base, frozen=True, kw_only=True, tag="bearer_token", tag_field="type"):
    username: str
    password: Secret


class JamfSourceConfig(_Base, frozen=True, kw_only=True, tag="jamf_pro", tag_field="type"):
    """The guide's Jamf Pro signal source ("Core Platform")."""

    name: str
    description: str = ""
    url: str
    auth: ClientCredentialsAuth | BearerTokenAuth
    device_lookup: Literal["serial_number", "udid"] = "serial_number"
    # attribute name (usable as ${/source/<name>}) → Jamf field path, e.g. userAndLocation.email
    attribute_mapping: dict[str, str] = msgspec.field(default_factory=dict)
    # The groups that matter (static or smart); membership of others is not reported.
    groups: list[str] = msgspec.field(default_factory=list)
    timeout: int | str = "15s"
    cache: int | str = "60s"
    max_connections: int = 5
    retries: int = 2
    ca_bundle: str | None = None
    # Jamf down or slow after the client's own retries: `retry` lets the bus redeliver the
    # order within its budget, `fail` answers serverInternal at once.
    on_unavailable: Literal["fail", "retry"] = "retry"
    # How long department, building and site names (id → name) are kept.
    names_cache: int | str = "1h"
    # Batched lookups (docs/jamf.md "Batching"): lookups arriving within ``batch_window_ms``
    # milliseconds are asked in one ``=in=(...)`` request of up to ``batch_size`` serials or
    # UDIDs; ``batch_size`` 0 or 1 turns batching off.
    batch_window_ms: float = 5.0
    batch_size: int = 100

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("url must be an absolute http(s) URL")
        if not 1 <= self.max_connections <= 5:
            raise ValueError("max_connections must be between 1 and 5 (Jamf's guidance)")
        if _seconds(self.timeout) <= 0:
            raise ValueError("timeout must be positive")
        if not 0 <= self.retries <= 10:
            raise ValueError("retries must be between 0 and 10")
        _seconds(self.cache)
        _seconds(self.names_cache)
        if not 0 <= self.batch_window_ms <= 1000:
            raise ValueError("batch_window_ms must be between 0 and 1000")
        # Half of Jamf's largest page (2000): a batch's duplicates must fit in one page.
        if not 0 <= self.batch_size <= 1000:
            raise ValueError("batch_size must be between 0 (off) and 1000")


SignalSourceConfig = StaticSourceConfig | JamfSourceConfig


class LookupPolicyConfig(_Base, frozen=True, kw_only=True):
    """The guide's "Security Signal Source": how and when a signal source is consulted."""

    name: str
    description: str = ""
    purpose: Literal["certificate_issuance", "radius_authentication"] = "certificate_issuance"
    signal_source: str
    lookup_type: Literal["device"] = "device"
    # Where the looked-up identity comes from: the attestation (serial/UDID), the CSR's
    # SAN dNSName, or (RADIUS) a presented certificate's SAN dNSName or PermanentIdentifier.
    identity: Literal[
        "attested_serial",
        "attested_udid",
        "csr_san_dns",
        "certificate_san_dns",
        "certificate_permanent_identifier",
        # RADIUS: the presented certificate's subject commonName (Apple profiles write
        # CN=$SERIALNUMBER; the attestation provider's csr_common_name keeps it honest).
        "certificate_common_name",
    ] = "attested_serial"
    revoke_on_failure: bool = False


class WorkflowConditions(_Base, frozen=True, kw_only=True):
    lookup_policy: str
    # The device must be in at least one of these groups (empty: no group condition).
    groups: list[str] = msgspec.field(default_factory=list)
    # attribute → accepted values
    attributes: dict[str, list[str]] = msgspec.field(default_factory=dict)


class PolicyWorkflowConfig(_Base, frozen=True, kw_only=True):
    """The guide's "Policy Workflow": conditions on the signal source that grant a role."""

    name: str
    description: str = ""
    conditions: WorkflowConditions


class DeviceRoleConditions(_Base, frozen=True, kw_only=True):
    attestation_provider: str
    min_os_version: str | None = None
    sip_enabled: bool | None = None
    secure_boot: list[str] = msgspec.field(default_factory=list)
    third_party_kexts_allowed: bool | None = None


class DeviceRoleConfig(_Base, frozen=True, kw_only=True):
    """The guide's "Device Role Policy": conditions on the attestation."""

    name: str
    description: str = ""
    conditions: DeviceRoleConditions


class ServerNamesConfig(_Base, frozen=True, kw_only=True):
    """Which ``dns`` and ``ip`` identifiers (RFC 8555 §9.7.7, RFC 8738) an enrollment policy
    for server certificates admits, and to which ACME accounts.

    ``domains`` entries are exact names (``radius.example.org``) or ``*.example.org``, which
    admits every name below ``example.org`` (any depth) but not ``example.org`` itself.
    """

    domains: list[str] = msgspec.field(default_factory=list)
    # Networks (CIDR) whose addresses may be certified (RFC 8738).
    ip_networks: list[str] = msgspec.field(default_factory=list)
    # Wildcard identifiers (``*.host.example.org``), validated through dns-01 only
    # (RFC 8555 §7.1.3, §8.4). A wildcard's base name must itself be admitted by ``domains``.
    wildcards: bool = False
    # ACME account ids admitted (empty: any account).
    accounts: list[str] = msgspec.field(default_factory=list)
    # EAB key ids (RFC 8555 §7.3.4) whose bound accounts are admitted (empty: any). With both
    # lists, an account is admitted if either names it.
    eab_keys: list[str] = msgspec.field(default_factory=list)
    # Whether the certificate's subject carries CN=<first identifier> (SANs always do).
    common_name: bool = True

    def __post_init__(self) -> None:
        if not self.domains and not self.ip_networks:
            raise ValueError("server_names needs `domains` or `ip_networks`")
        for domain in self.domains:
            base = domain[2:] if domain.startswith("*.") else domain
            if not base or "*" in base or base != base.lower().strip("."):
                raise ValueError(
                    f"domains: {domain!r} must be a lower-case name, optionally prefixed by '*.'"
                )
        for network in self.ip_networks:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(f"ip_networks: {network!r} is not a network (CIDR)") from None


class EnrollmentPolicyConfig(_Base, frozen=True, kw_only=True):
    """The guide's "Enrollment Policy": role + device role → CA + template. First match wins.

    A policy with ``server_names`` is for server certificates (``dns``/``ip`` orders) and
    never matches a device; the others never match a server order.
    """

    name: str
    description: str = ""
    role: str | None = None
    device_role: str | None = None
    platforms: list[str] = msgspec.field(default_factory=list)
    certificate_authority: str
    certificate_template: str
    server_names: ServerNamesConfig | None = None
    # Re-enrollment of a device (docs/profiles.md): its older certificates of this policy are
    # kept, or revoked (reason superseded) once the new one is downloaded.
    previous_certificates: Literal["keep", "revoke"] = "keep"
    # The least time between two certificates of this policy for one device; a device that
    # enrolls again sooner is refused (rateLimited with Retry-After). None: no limit.
    renewal_window: int | str | None = None

    def __post_init__(self) -> None:
        if self.server_names is not None and (self.role or self.device_role or self.platforms):
            raise ValueError(
                "a policy with server_names is for servers: it takes no role, device_role "
                "or platforms"
            )
        if self.renewal_window is not None and _seconds(self.renewal_window) <= 0:
            raise ValueError("renewal_window must be positive")


class CaaConfig(_Base, frozen=True, kw_only=True):
    """CAA checking before issuance (RFC 8659)."""

    enabled: bool = True
    # The issuer domain names this CA answers to in CAA `issue`/`issuewild` records.
    identities: list[str] = msgspec.field(default_factory=list)


class ResolverConfig(_Base, frozen=True, kw_only=True):
    """The DNS resolver of dns-01, CAA and the name lookups of http-01 / tls-alpn-01."""

    # "address" or "address:port" ("[v6]:port"); empty: the system's resolv.conf.
    nameservers: list[str] = msgspec.field(default_factory=list)
    timeout: int | str = "5s"

    def __post_init__(self) -> None:
        if _seconds(self.timeout) <= 0:
            raise ValueError("timeout must be positive")


class ValidationConfig(_Base, frozen=True, kw_only=True):
    """How the attestation service validates http-01, dns-01 and tls-alpn-01 challenges
    (one vantage point: the validating replica's own network)."""

    # RFC 8555 §8.3 and RFC 8737 §3 fix 80 and 443; tests and lab setups may change them.
    http_port: int = 80
    tls_alpn_port: int = 443
    # One validation attempt, connection and reading included.
    timeout: int | str = "10s"
    # http-01: the most bytes read of a response body, and of redirects followed.
    max_body_bytes: int = 8192
    max_redirects: int = 10
    resolver: ResolverConfig = msgspec.field(default_factory=ResolverConfig)
    caa: CaaConfig = msgspec.field(default_factory=CaaConfig)

    def __post_init__(self) -> None:
        for port in (self.http_port, self.tls_alpn_port):
            if not 0 < port < 65536:
                raise ValueError("ports must be between 1 and 65535")
        if _seconds(self.timeout) <= 0:
            raise ValueError("timeout must be positive")
        if not 128 <= self.max_body_bytes <= 1024 * 1024:
            raise ValueError("max_body_bytes must be between 128 and 1048576")
        if not 0 <= self.max_redirects <= 20:
            raise ValueError("max_redirects must be between 0 and 20")


# --- device management platforms (profiles, enrollment tokens) --------------------------------


# The profile's key size (P-256 or P-384) and which ClientIdentifier it sends.
ProfileKeySize = Literal[256, 384]
ClientIdentifier = Literal["token", "$SERIALNUMBER", "$UDID"]


TlsVersion = Literal["1.0", "1.1", "1.2", "1.3"]


class EapTlsSettings(_Base, frozen=True, kw_only=True):
    """EAP-TLS with the ACME identity, as Wi-Fi and wired 802.1X payloads carry it."""

    # The RADIUS server certificate names the device accepts (Apple: TLSTrustedServerNames).
    trusted_server_names: list[str] = msgspec.field(default_factory=list)
    tls_minimum_version: TlsVersion = "1.2"


class WifiSettings(EapTlsSettings, frozen=True, kw_only=True):
    """A `com.apple.wifi.managed` payload joining an enterprise network with EAP-TLS."""

    ssid: str
    hidden: bool = False
    auto_join: bool = True
    # Apple's EncryptionType: WPA2 joins WPA2 or WPA3 networks, WPA3 only WPA3, Any any.
    encryption: Literal["WPA", "WPA2", "WPA3", "Any"] = "WPA2"

    def __post_init__(self) -> None:
        if not self.ssid or len(self.ssid.encode()) > 32:
            raise ValueError("ssid must be 1 to 32 bytes (IEEE 802.11)")


class VpnSettings(_Base, frozen=True, kw_only=True):
    """A `com.apple.vpn.managed` IKEv2 payload authenticating with the ACME identity."""

    name: str
    server: str
    remote_identifier: str
    # Jamf expands its variables (e.g. $SERIALNUMBER) before the device sees the profile.
    local_identifier: str = "$SERIALNUMBER"


class ProfileSettings(_Base, frozen=True, kw_only=True):
    """Values of the `com.apple.security.acme` payload the platform's profile carries, and the
    network payloads that use its identity (docs/profiles.md)."""

    # The X.500 subject; Jamf variables such as $SERIALNUMBER are expanded by Jamf.
    subject: str = "CN=$SERIALNUMBER"
    key_size: ProfileKeySize = 384
    # Which ClientIdentifier the profile sends: the platform's enrollment token, or a Jamf
    # variable that expands to the device's serial or UDID.
    client_identifier: ClientIdentifier = "token"
    subject_alt_name: dict[str, str] = msgspec.field(default_factory=dict)
    usage_flags: int | None = None
    extended_key_usage: list[str] = msgspec.field(default_factory=list)
    signing_certificate: str | None = None
    signing_key: Secret | None = None
    # PEM files of CA certificates the devices must trust (the issuing chain's root, the CA of
    # the RADIUS server's certificate): self-signed ones become com.apple.security.root
    # payloads, the others com.apple.security.pkcs1.
    trust: list[str] = msgspec.field(default_factory=list)
    wifi: WifiSettings | None = None
    ethernet: EapTlsSettings | None = None
    vpn: VpnSettings | None = None


class PublishSettings(_Base, frozen=True, kw_only=True):
    """Where ``acmegate platform publish`` puts the platform's profile in Jamf Pro (Classic API
    configuration profiles, docs/profiles.md)."""

    # A jamf_pro signal source: its URL, API client or user, and CA bundle are used.
    source: str
    # The profile's name in Jamf Pro (the key publishing again finds it by); default:
    # "acmegate: <platform>".
    name: str | None = None
    # Groups a macOS configuration profile is scoped to; None: no macOS profile.
    computer_groups: list[str] | None = None
    # Groups a mobile device configuration profile is scoped to; None: no mobile profile.
    mobile_device_groups: list[str] | None = None

    def __post_init__(self) -> None:
        if self.computer_groups is None and self.mobile_device_groups is None:
            raise ValueError("publish needs computer_groups and/or mobile_device_groups")
        if self.name is not None and not self.name.strip():
            raise ValueError("publish name must not be empty")


class DeviceManagementPlatformConfig(_Base, frozen=True, kw_only=True):
    """The guide's "Device Management Platform": its .mobileconfig and enrollment token."""

    name: str
    description: str = ""
    type: Literal["acme_enrollment_token"] = "acme_enrollment_token"
    vendor: Literal["jamf_pro", "generic"] = "jamf_pro"
    profile: ProfileSettings = msgspec.field(default_factory=ProfileSettings)
    publish: PublishSettings | None = None


class RevocationCheckConfig(_Base, frozen=True, kw_only=True):
    """The periodic Revoke-On-Failure re-check of devices holding valid certificates."""

    enabled: bool = True
    interval: int | str = "1h"
    # Devices re-checked per round and replica (each claimed with FOR UPDATE SKIP LOCKED).
    batch: int = 100

    def __post_init__(self) -> None:
        if _seconds(self.interval) <= 0:
            raise ValueError("interval must be positive")
        if self.batch < 1:
            raise ValueError("batch must be at least 1")


class RadiusConfig(_Base, frozen=True, kw_only=True):
    """The HTTP endpoint FreeRADIUS rlm_rest calls during EAP-TLS."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 8081
    lookup_policy: str | None = None
    token: Secret | None = None
    # The CAs whose certificates the endpoint accepts (names); empty: every configured CA.
    certificate_authorities: list[str] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError("port must be between 1 and 65535")


class WebhookBasicAuth(_Base, frozen=True, kw_only=True, tag="basic", tag_field="type"):
    """Jamf's "Authentication Type: Basic Authentication": username and password."""

    username: str
    password: Secret


class WebhookHeaderAuth(_Base, frozen=True, kw_only=True, tag="header", tag_field="type"):
    """Jamf's "Authentication Type: Header Authentication": one header name and value."""

    header: str = "Authorization"
    value: Secret


class JamfWebhooksConfig(_Base, frozen=True, kw_only=True):
    """The receiver of Jamf Pro webhooks (docs/jamf.md "Webhooks"), in the policy service:
    ``POST /jamf/webhooks/<signal source name>``."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 8082
    auth: WebhookBasicAuth | WebhookHeaderAuth | None = None
    # Accepted webhooks per second (a token bucket of ``burst``); beyond: 429.
    rate_limit: float = 50.0
    burst: int = 200

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError("port must be between 1 and 65535")
        if self.enabled and self.auth is None:
            raise ValueError("auth is required: Jamf must authenticate its webhooks")
        if self.rate_limit <= 0 or self.burst < 1:
            raise ValueError("rate_limit and burst must be positive")


class DevConfig(_Base, frozen=True, kw_only=True):
    """Development conveniences; the gateway warns loudly when any is on."""

    # Create a CA and a test attestation root under `dir` when they are missing.
    bootstrap: bool = False
    dir: str = "var/dev"


class Config(_Base, frozen=True, kw_only=True):
    """The whole configuration file."""

    server: ServerConfig = msgspec.field(default_factory=ServerConfig)
    admin: AdminConfig = msgspec.field(default_factory=AdminConfig)
    database: DatabaseConfig = msgspec.field(default_factory=DatabaseConfig)
    bus: BusConfig = msgspec.field(default_factory=BusConfig)
    acme: AcmeConfig = msgspec.field(default_factory=AcmeConfig)
    rate_limits: RateLimitsConfig = msgspec.field(default_factory=RateLimitsConfig)
    retention: RetentionConfig = msgspec.field(default_factory=RetentionConfig)
    logging: LoggingConfig = msgspec.field(default_factory=LoggingConfig)
    health: HealthConfig = msgspec.field(default_factory=HealthConfig)
    tracing: TracingConfig = msgspec.field(default_factory=TracingConfig)
    startup: StartupConfig = msgspec.field(default_factory=StartupConfig)
    dev: DevConfig = msgspec.field(default_factory=DevConfig)
    attestation_providers: list[AttestationProviderConfig] = msgspec.field(
        default_factory=lambda: [AttestationProviderConfig(name="apple")]
    )
    certificate_authorities: list[CertificateAuthorityConfig] = msgspec.field(default_factory=list)
    certificate_templates: list[CertificateTemplateConfig] = msgspec.field(default_factory=list)
    device_management_platforms: list[DeviceManagementPlatformConfig] = msgspec.field(
        default_factory=list
    )
    signal_sources: list[SignalSourceConfig] = msgspec.field(default_factory=list)
    lookup_policies: list[LookupPolicyConfig] = msgspec.field(default_factory=list)
    policy_workflows: list[PolicyWorkflowConfig] = msgspec.field(default_factory=list)
    device_roles: list[DeviceRoleConfig] = msgspec.field(default_factory=list)
    enrollment_policies: list[EnrollmentPolicyConfig] = msgspec.field(default_factory=list)
    validation: ValidationConfig = msgspec.field(default_factory=ValidationConfig)
    revocation_check: RevocationCheckConfig = msgspec.field(default_factory=RevocationCheckConfig)
    radius: RadiusConfig = msgspec.field(default_factory=RadiusConfig)
    jamf_webhooks: JamfWebhooksConfig = msgspec.field(default_factory=JamfWebhooksConfig)
    # The signer's CRL / OCSP / CA-certificate listener; absent: no listener, no CDP/AIA.
    pki: PkiConfig | None = None


def seconds(value: int | str) -> int:
    """The number of seconds of a validated duration field."""
    return parse_duration(value)
