"""Operator checks: the policy configuration at start, and a lookup tried by hand.

:func:`validate_config` adds to the loader's reference checks what only the policy service
knows (template syntax and variables, inventories, version strings), each problem naming its
key. :func:`validate_lookup` is the guide's "Validate Configuration" of a security signal
source: enter a device's identity, see what the lookup finds ("Account validation failed."
and why, or the mapped attributes and groups).
"""

from __future__ import annotations

import ssl

from acmegate.common.admin_messages import LookupReport, LookupVerdict
from acmegate.common.config.model import Config, JamfSourceConfig, StaticSourceConfig
from acmegate.policy.conditions import SECURE_BOOT_LEVELS, parse_version
from acmegate.policy.lookups import ENROLLMENT_IDENTITIES, IDENTITY_KINDS
from acmegate.policy.sources.base import DeviceRecord, SignalSource, SourceUnavailable
from acmegate.policy.sources.factory import UnsupportedSource, build_source
from acmegate.policy.sources.jamf.mapping import mapping_problems
from acmegate.policy.sources.static import InventoryError, StaticSource
from acmegate.policy.templates import TemplateError, compile_templates


def _source_attributes(config: Config, problems: list[str]) -> frozenset[str]:
    """The attribute names the signal sources offer to templates (``/source/<name>``)."""
    names: set[str] = set()
    for index, source in enumerate(config.signal_sources):
        where = f"$.signal_sources[{index}]"
        if isinstance(source, StaticSourceConfig):
            try:
                names |= StaticSource(source).attribute_names
            except InventoryError as exc:
                problems.append(f"{where}.file: {exc}" if exc.in_file else f"{where}.{exc}")
        elif isinstance(source, JamfSourceConfig):
            names |= set(source.attribute_mapping)
            problems.extend(
                f"{where}.attribute_mapping.{problem}"
                for problem in mapping_problems(source.attribute_mapping)
            )
            if source.ca_bundle is not None:
                try:
                    ssl.create_default_context(cafile=source.ca_bundle)
                except (OSError, ssl.SSLError) as exc:
                    problems.append(f"{where}.ca_bundle: cannot load {source.ca_bundle}: {exc}")
    return frozenset(names)


def _workflow_problems(config: Config) -> list[str]:
    """Conditions a Jamf source can never satisfy: it reports only its configured groups
    and mapped attributes (the guide's "Groups" and "Attribute Mapping" tabs)."""
    problems: list[str] = []
    lookups = {policy.name: policy for policy in config.lookup_policies}
    sources = {source.name: source for source in config.signal_sources}
    for index, workflow in enumerate(config.policy_workflows):
        where = f"$.policy_workflows[{index}].conditions"
        lookup = lookups.get(workflow.conditions.lookup_policy)
        source = sources.get(lookup.signal_source) if lookup is not None else None
        if not isinstance(source, JamfSourceConfig):
            continue
        reported = {group.casefold() for group in source.groups}
        for j, group in enumerate(workflow.conditions.groups):
            if group.casefold() not in reported:
                problems.append(
                    f"{where}.groups[{j}]: signal source {source.name!r} does not report group "
                    f"{group!r} (add it to the source's groups)"
                )
        for attribute in workflow.conditions.attributes:
            if attribute not in source.attribute_mapping:
                problems.append(
                    f"{where}.attributes.{attribute}: signal source {source.name!r} maps no "
                    f"attribute {attribute!r} (add it to the source's attribute_mapping)"
                )
    return problems


def validate_config(config: Config) -> list[str]:
    """Every problem of the policy configuration, as ``$.key: problem`` messages."""
    problems: list[str] = []
    attributes = _source_attributes(config, problems)
    try:
        compile_templates(config, attributes)
    except TemplateError as exc:
        problems.extend(exc.problems)

    for index, role in enumerate(config.device_roles):
        where = f"$.device_roles[{index}].conditions"
        minimum = role.conditions.min_os_version
        if minimum is not None:
            try:
                parse_version(minimum)
            except ValueError:
                problems.append(f"{where}.min_os_version: {minimum!r} is not a dotted version")
        levels = {level.casefold() for level in SECURE_BOOT_LEVELS}
        for j, level in enumerate(role.conditions.secure_boot):
            if level.strip().casefold() not in levels:
                problems.append(
                    f"{where}.secure_boot[{j}]: unknown secure boot status {level!r} "
                    f"(Apple reports {', '.join(SECURE_BOOT_LEVELS)})"
                )

    problems.extend(_workflow_problems(config))
    lookups = {policy.name: policy for policy in config.lookup_policies}
    for index, workflow in enumerate(config.policy_workflows):
        lookup = lookups.get(workflow.conditions.lookup_policy)
        if lookup is not None and lookup.purpose != "certificate_issuance":
            problems.append(
                f"$.policy_workflows[{index}].conditions.lookup_policy: lookup policy "
                f"{lookup.name!r} has purpose {lookup.purpose}; enrollments need one with "
                "purpose certificate_issuance"
            )
        elif lookup is not None and lookup.identity not in ENROLLMENT_IDENTITIES:
            problems.append(
                f"$.policy_workflows[{index}].conditions.lookup_policy: lookup policy "
                f"{lookup.name!r} identifies devices by {lookup.identity}, which an enrollment "
                f"does not present (use {', '.join(sorted(ENROLLMENT_IDENTITIES))})"
            )
    return problems


ACCOUNT_VALID: LookupVerdict = "Account validation succeeded."
ACCOUNT_INVALID: LookupVerdict = "Account validation failed."


async def validate_lookup(
    config: Config, name: str, identity: str, *, source: SignalSource | None = None
) -> LookupReport:
    """Run lookup policy ``name`` for ``identity`` and report what the source says.

    ``source`` may be a live source (the admin API passes the running one); otherwise one is
    built from the configuration and closed afterwards. Raises ``ValueError`` for an unknown
    lookup policy name.
    """
    policy = next((p for p in config.lookup_policies if p.name == name), None)
    if policy is None:
        raise ValueError(f"no lookup policy named {name!r}")

    def failed(reason: str) -> LookupReport:
        return LookupReport(
            policy.name, policy.signal_source, identity, False, ACCOUNT_INVALID, reason
        )

    own = source is None
    if source is None:
        config_of = next(s for s in config.signal_sources if s.name == policy.signal_source)
        try:
            source = build_source(config_of)
        except (InventoryError, UnsupportedSource, OSError, ssl.SSLError) as exc:
            return failed(str(exc))
    try:
        record: DeviceRecord | None = None
        for kind in IDENTITY_KINDS[policy.identity]:
            # An operator validating wants the truth, not the cache.
            record = await source.lookup(identity, kind, fresh=True)
            if record is not None:
                break
    except SourceUnavailable as exc:
        return failed(str(exc))
    finally:
        if own:
            await source.close()
    if record is None:
        return failed(f"device {identity} is not known to signal source {source.name!r}")
    if record.problem is not None:
        return failed(f"device {identity} cannot be vouched for: {record.problem}")
    report = LookupReport(
        policy.name,
        policy.signal_source,
        identity,
        record.managed,
        ACCOUNT_VALID if record.managed else ACCOUNT_INVALID,
        None if record.managed else f"device {identity} is not managed",
        record.managed,
        dict(record.attributes),
        list(record.groups),
    )
    return report
