"""Load and validate the YAML configuration; every error names the key it is about."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec
import yaml

from acmegate.common.config import model
from acmegate.common.config.secrets import Secret


class ConfigError(Exception):
    """The configuration is invalid; the message names the file, the key and the problem."""


# Fields holding file-system paths, resolved against the configuration file's directory.
_PATH_FIELDS: dict[type[Any], tuple[str, ...]] = {
    model.TlsConfig: ("certificate", "key"),
    model.EmbeddedDatabase: ("data_dir",),
    model.CertificateAuthorityConfig: ("certificate", "chain"),
    model.FileKey: ("path",),
    model.AttestationProviderConfig: ("roots",),
    model.StaticSourceConfig: ("file",),
    model.JamfSourceConfig: ("ca_bundle",),
    model.ProfileSettings: ("signing_certificate", "trust"),
    model.DevConfig: ("dir",),
}


def load_config(path: str | os.PathLike[str]) -> model.Config:
    """Read, validate and resolve the configuration at ``path``."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc.strerror}") from exc
    return parse_config(text, base_dir=file.resolve().parent, source=str(file))


def parse_config(text: str, *, base_dir: Path, source: str = "<config>") -> model.Config:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping")
    try:
        config: model.Config = msgspec.convert(raw, model.Config, strict=True)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{source}: {_humanize(str(exc))}") from exc
    config = _resolve_paths(config, base_dir)
    assert isinstance(config, model.Config)
    problems = list(check_references(config))
    if problems:
        raise ConfigError(f"{source}: " + "; ".join(problems))
    return config


def _humanize(message: str) -> str:
    # msgspec says "Expected `int`, got `str` - at `$.server.port`": put the key first.
    if " - at `" in message:
        detail, _, where = message.rpartition(" - at `")
        where = where.rstrip("`")
        if where.rsplit(".", 1)[-1] in _SECRET_FIELDS and "got `str`" in detail:
            detail += "; secrets are written {env: NAME} or {file: PATH}, never inline"
        return f"{where}: {detail}"
    return message


_SECRET_FIELDS = {
    "passphrase",
    "pin",
    "client_secret",
    "password",
    "token",
    "nonce_key",
    "eab_secret",
}


def _resolve_paths(value: Any, base: Path) -> Any:
    if isinstance(value, Secret):
        if value.file is not None:
            return Secret(file=_join(base, value.file))
        return value
    if isinstance(value, list):
        return [_resolve_paths(item, base) for item in value]
    if isinstance(value, msgspec.Struct):
        changes: dict[str, Any] = {}
        path_fields = _PATH_FIELDS.get(type(value), ())
        for name in value.__struct_fields__:
            current = getattr(value, name)
            if name in path_fields:
                changes[name] = _resolve_path_value(current, base)
            else:
                resolved = _resolve_paths(current, base)
                if resolved is not current:
                    changes[name] = resolved
        return msgspec.structs.replace(value, **changes) if changes else value
    return value


def _resolve_path_value(value: Any, base: Path) -> Any:
    if value is None:
        return None
    if isinstance(value, list):
        return [_join(base, item) for item in value]
    return _join(base, value)


def _join(base: Path, path: str) -> str:
    # Normalised, so that messages say /srv/var/dev, not /srv/examples/../var/dev.
    return os.path.normpath(base / path)


def _unique(kind: str, names: Iterable[str]) -> Iterable[str]:
    seen: set[str] = set()
    for index, name in enumerate(names):
        if not name:
            yield f"$.{kind}[{index}].name: must not be empty"
        if name in seen:
            yield f"$.{kind}[{index}].name: duplicate name {name!r}"
        seen.add(name)


def check_references(config: model.Config) -> Iterable[str]:
    """Every name a definition refers to must be defined (yields one message per problem)."""
    cas = {ca.name for ca in config.certificate_authorities}
    templates = {t.name for t in config.certificate_templates}
    providers = {p.name for p in config.attestation_providers}
    sources = {s.name for s in config.signal_sources}
    lookups = {lp.name: lp for lp in config.lookup_policies}
    workflows = {w.name for w in config.policy_workflows}
    roles = {r.name for r in config.device_roles}
    platforms = {p.name for p in config.device_management_platforms}

    for kind, items in (
        ("certificate_authorities", config.certificate_authorities),
        ("certificate_templates", config.certificate_templates),
        ("attestation_providers", config.attestation_providers),
        ("signal_sources", config.signal_sources),
        ("lookup_policies", config.lookup_policies),
        ("policy_workflows", config.policy_workflows),
        ("device_roles", config.device_roles),
        ("enrollment_policies", config.enrollment_policies),
        ("device_management_platforms", config.device_management_platforms),
    ):
        yield from _unique(kind, (item.name for item in items))

    def missing(where: str, what: str, name: str | None, known: Iterable[str]) -> Iterable[str]:
        if name is not None and name not in known:
            yield f"{where}: no {what} named {name!r}"

    for i, lp in enumerate(config.lookup_policies):
        yield from missing(
            f"$.lookup_policies[{i}].signal_source", "signal source", lp.signal_source, sources
        )
    for i, wf in enumerate(config.policy_workflows):
        yield from missing(
            f"$.policy_workflows[{i}].conditions.lookup_policy",
            "lookup policy",
            wf.conditions.lookup_policy,
            lookups,
        )
    for i, role in enumerate(config.device_roles):
        yield from missing(
            f"$.device_roles[{i}].conditions.attestation_provider",
            "attestation provider",
            role.conditions.attestation_provider,
            providers,
        )
    for i, ep in enumerate(config.enrollment_policies):
        where = f"$.enrollment_policies[{i}]"
        yield from missing(f"{where}.role", "policy workflow", ep.role, workflows)
        yield from missing(f"{where}.device_role", "device role", ep.device_role, roles)
        yield from missing(
            f"{where}.certificate_authority", "certificate authority", ep.certificate_authority, cas
        )
        yield from missing(
            f"{where}.certificate_template",
            "certificate template",
            ep.certificate_template,
            templates,
        )
        for j, platform in enumerate(ep.platforms):
            yield from missing(
                f"{where}.platforms[{j}]", "device management platform", platform, platforms
            )
    jamf_sources = {s.name for s in config.signal_sources if isinstance(s, model.JamfSourceConfig)}
    for i, dmp in enumerate(config.device_management_platforms):
        if dmp.publish is not None:
            yield from missing(
                f"$.device_management_platforms[{i}].publish.source",
                "jamf_pro signal source",
                dmp.publish.source,
                jamf_sources,
            )
    yield from _check_server_policies(config)
    if config.radius.enabled:
        name = config.radius.lookup_policy
        if name is None:
            yield "$.radius.lookup_policy: required when the RADIUS endpoint is enabled"
        elif name not in lookups:
            yield f"$.radius.lookup_policy: no lookup policy named {name!r}"
        elif lookups[name].purpose != "radius_authentication":
            yield f"$.radius.lookup_policy: {name!r} has purpose {lookups[name].purpose}"
        elif not lookups[name].identity.startswith("certificate_"):
            yield (
                f"$.radius.lookup_policy: {name!r} identifies devices by "
                f"{lookups[name].identity}; RADIUS presents a certificate (use certificate_*)"
            )
        if config.radius.token is None:
            yield "$.radius.token: required when the RADIUS endpoint is enabled"
    for j, ca in enumerate(config.radius.certificate_authorities):
        yield from missing(
            f"$.radius.certificate_authorities[{j}]", "certificate authority", ca, cas
        )


_SERVER_AUTH = ("server_auth", "1.3.6.1.5.5.7.3.1")


def _check_server_policies(config: model.Config) -> Iterable[str]:
    """Server and device certificates never mix: only a policy with ``server_names`` may
    issue serverAuth, and it must (a device's attestation proves nothing about a name)."""
    templates = {t.name: t for t in config.certificate_templates}
    for i, ep in enumerate(config.enrollment_policies):
        template = templates.get(ep.certificate_template)
        if template is None:
            continue
        server_auth = any(eku in _SERVER_AUTH for eku in template.extended_key_usage)
        where = f"$.enrollment_policies[{i}].certificate_template"
        if ep.server_names is not None and not server_auth:
            yield f"{where}: {template.name!r} lacks server_auth, which server_names needs"
        if ep.server_names is None and server_auth:
            yield (
                f"{where}: {template.name!r} has server_auth; only a policy with server_names "
                "may issue server certificates"
            )
    caa = config.validation.caa
    if caa.enabled and not caa.identities and any_server_policy(config):
        yield "$.validation.caa.identities: required when CAA is checked (or enabled: false)"


def any_server_policy(config: model.Config) -> bool:
    """Whether some enrollment policy issues server certificates (dns/ip orders)."""
    return any(ep.server_names is not None for ep in config.enrollment_policies)
