"""acmegate's policy service: signal sources, enrollment policies and certificate templates.

A FinalizeOrder arrives with a verified CSR and the device's attestation claims; the first
matching enrollment policy (platform, device role, policy workflow backed by a signal source
lookup) picks a CA and a template, and the template renders the certificate spec the signer
issues. See :mod:`acmegate.policy.service` for the queue handling.
"""

from acmegate.common.admin_messages import LookupReport
from acmegate.policy.engine import Decision, PolicyEngine
from acmegate.policy.finalize import PolicyStage, enrollment_record
from acmegate.policy.service import PolicyService
from acmegate.policy.sources import (
    DeviceRecord,
    SignalSource,
    SourceUnavailable,
    StaticSource,
    ValidationReport,
    build_source,
)
from acmegate.policy.templates import CompiledTemplate, TemplateError, compile_templates
from acmegate.policy.validation import validate_config, validate_lookup

__all__ = [
    "CompiledTemplate",
    "Decision",
    "DeviceRecord",
    "LookupReport",
    "PolicyEngine",
    "PolicyService",
    "PolicyStage",
    "SignalSource",
    "SourceUnavailable",
    "StaticSource",
    "TemplateError",
    "ValidationReport",
    "build_source",
    "compile_templates",
    "enrollment_record",
    "validate_config",
    "validate_lookup",
]
