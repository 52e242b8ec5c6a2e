"""The OpenAPI 3 document of the admin API, served at ``/api/v1/openapi.json``.

It is the contract the schemathesis test holds the live API to: every operation, parameter,
body, response (success and problem) and the bearer authentication. Built once when the
listener starts; the enumerations come from the modules that enforce them.
"""

from __future__ import annotations

from typing import Any

from acmegate.common.config import Config
from acmegate.frontend.admin.routes.certificates import REASONS, SERIAL_PATTERN, STATUSES
from acmegate.frontend.admin.routes.enrollments import OUTCOMES

API = "/api/v1"

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: Schema) -> Schema:
    return {**schema, "nullable": True}


def _object(properties: dict[str, Schema], *, required: list[str] | None = None) -> Schema:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
    }


def _list_of(key: str, item: str) -> Schema:
    return _object({key: {"type": "array", "items": _ref(item)}})


STRING: Schema = {"type": "string"}
TEXT_OR_NULL: Schema = _nullable({"type": "string"})
TIME: Schema = {"type": "string", "format": "date-time"}
TIME_OR_NULL: Schema = _nullable(TIME)
BOOLEAN: Schema = {"type": "boolean"}
STRINGS: Schema = {"type": "array", "items": STRING}

_IDENTIFIER: Schema = _object({"type": STRING, "value": STRING})

_DEVICE: Schema = {
    "type": "object",
    "description": "What the attestation said about the device (apple-mda.md §2.3).",
    "properties": {
        "provider": STRING,
        "format": STRING,
        "attested_key": {"type": "string", "description": "DER SPKI, base64"},
        "serial_number": STRING,
        "udid": STRING,
        "os_version": STRING,
        "sepos_version": STRING,
        "llb_version": STRING,
        "software_update_device_id": STRING,
        "sip_enabled": BOOLEAN,
        "secure_boot": STRING,
        "third_party_kexts_allowed": BOOLEAN,
        "attestation_not_after": TIME,
    },
    "required": ["provider", "format", "attested_key"],
}

_ENROLLMENT_RECORD: Schema = {
    "type": "object",
    "nullable": True,
    "description": "Why the certificate was issued: device claims and the policies that matched.",
    "properties": {
        "identifier": _IDENTIFIER,
        "device": _DEVICE,
        "platform": STRING,
        "signal_source": STRING,
        "source_attributes": {"type": "object", "additionalProperties": STRING},
        "source_groups": STRINGS,
        "lookup_policy": STRING,
        "workflow": STRING,
        "device_role": STRING,
        "enrollment_policy": STRING,
        "revoke_on_failure": BOOLEAN,
    },
    "required": ["identifier"],
}

SCHEMAS: dict[str, Schema] = {
    "Problem": {
        "type": "object",
        "description": "RFC 7807 problem document.",
        "properties": {
            "type": {"type": "string", "enum": ["about:blank"]},
            "title": STRING,
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": STRING,
        },
        "required": ["type", "title", "status", "detail"],
    },
    "CertificateAuthority": _object(
        {
            "name": STRING,
            "description": STRING,
            "subject": STRING,
            "chain": {**STRINGS, "description": "Subjects from this CA up to the root."},
            "not_before": TIME,
            "not_after": TIME,
            "key_algorithm": {**STRING, "example": "EC P-384"},
            "key_storage": STRING,
            "crl_url": TEXT_OR_NULL,
            "ocsp_url": TEXT_OR_NULL,
        }
    ),
    "Template": _object(
        {
            "name": STRING,
            "description": STRING,
            "subject": STRING,
            "subject_alt_names": _object(
                {
                    "dns": STRINGS,
                    "rfc822": STRINGS,
                    "uri": STRINGS,
                    "ip": STRINGS,
                    "other_name": STRINGS,
                    "permanent_identifier": STRINGS,
                }
            ),
            "required": STRINGS,
            "validity_seconds": {"type": "integer"},
            "signature_algorithm": {"type": "string", "enum": ["sha256", "sha384", "sha512"]},
            "key_usage": STRINGS,
            "extended_key_usage": STRINGS,
        }
    ),
    "Platform": _object(
        {
            "name": STRING,
            "description": STRING,
            "type": STRING,
            "vendor": STRING,
            "client_identifier": {"type": "string", "enum": ["token", "$SERIALNUMBER", "$UDID"]},
            "subject": STRING,
            "key_size": {"type": "integer", "enum": [256, 384]},
            "signed": BOOLEAN,
            "profile_path": STRING,
            "token_created_at": TIME_OR_NULL,
        }
    ),
    "TokenRotation": _object({"platform": STRING, "token": STRING, "created_at": TIME}),
    "SignalSource": _object(
        {
            "name": STRING,
            "type": {"type": "string", "enum": ["static", "jamf_pro"]},
            "description": STRING,
            "url": TEXT_OR_NULL,
        }
    ),
    "SignalSourceValidation": _object({"name": STRING, "ok": BOOLEAN, "message": STRING}),
    "LookupPolicy": _object(
        {
            "name": STRING,
            "description": STRING,
            "purpose": STRING,
            "signal_source": STRING,
            "lookup_type": STRING,
            "identity": STRING,
            "revoke_on_failure": BOOLEAN,
        }
    ),
    "LookupValidationRequest": {
        "type": "object",
        "properties": {
            "identity": {
                "type": "string",
                "minLength": 1,
                "pattern": "\\S",
                "description": "A device serial number, UDID or DNS name (per the policy).",
                "example": "C02XXXXXXXXX",
            }
        },
        "required": ["identity"],
        "additionalProperties": False,
    },
    "LookupValidation": _object(
        {
            "lookup_policy": STRING,
            "signal_source": STRING,
            "identity": STRING,
            "ok": BOOLEAN,
            "message": {
                "type": "string",
                "enum": ["Account validation succeeded.", "Account validation failed."],
            },
            "reason": TEXT_OR_NULL,
            "managed": _nullable(BOOLEAN),
            "attributes": {"type": "object", "additionalProperties": STRING},
            "groups": STRINGS,
        }
    ),
    "Certificate": _object(
        {
            "serial": {**STRING, "description": "lower-case hexadecimal"},
            "status": {"type": "string", "enum": list(STATUSES)},
            "expired": BOOLEAN,
            "ca": STRING,
            "template": STRING,
            "account_id": STRING,
            "order_id": STRING,
            "not_before": TIME,
            "not_after": TIME,
            "issued_at": TIME,
            "identifier": _nullable(_IDENTIFIER),
            "device_serial": TEXT_OR_NULL,
            "revoked_at": TIME_OR_NULL,
            "revocation_reason": TEXT_OR_NULL,
            "subject": {**TEXT_OR_NULL, "description": "Only when shown alone."},
            "subject_alt_names": STRINGS,
            "record": _ENROLLMENT_RECORD,
            "chain_pem": {**TEXT_OR_NULL, "description": "Only when shown alone."},
        }
    ),
    "RevokeRequest": {
        "type": "object",
        "properties": {
            "reason": {"type": "string", "enum": list(REASONS), "default": "unspecified"}
        },
        "additionalProperties": False,
    },
    "EnrollmentEvent": _object(
        {
            "id": {"type": "integer"},
            "at": TIME,
            "outcome": {"type": "string", "enum": list(OUTCOMES)},
            "stage": {"type": "string", "enum": ["challenge", "order"]},
            "order_id": STRING,
            "account_id": STRING,
            "identifier": {
                **TEXT_OR_NULL,
                "description": "The order's identifier when it named the device (never a token).",
            },
            "platform": TEXT_OR_NULL,
            "device_serial": TEXT_OR_NULL,
            "certificate_serial": TEXT_OR_NULL,
            "enrollment_policy": TEXT_OR_NULL,
            "certificate_template": TEXT_OR_NULL,
            "signal_source": TEXT_OR_NULL,
            "reason": TEXT_OR_NULL,
            "problem": _nullable(_object({"kind": STRING, "detail": STRING})),
        }
    ),
}


def _problem(description: str) -> Schema:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": _ref("Problem")}},
    }


RESPONSES: dict[str, Schema] = {
    "BadRequest": _problem("A parameter or field is invalid; the detail names it."),
    "Unauthorized": {
        **_problem("The bearer token is missing or wrong."),
        "headers": {"WWW-Authenticate": {"schema": STRING}},
    },
    "TooManyRequests": {
        **_problem(
            "Too many failed logins from this client address "
            "(rate_limits.failed_admin_logins_per_ip): refused whatever the token; retry "
            "after the given seconds."
        ),
        "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}},
    },
    "NotFound": _problem("No such resource (the detail says which name or serial)."),
    "Unavailable": _problem("The signer or policy service did not answer; retry later."),
}


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _responses(ok: Schema, *errors: str) -> Schema:
    codes = {"400": "BadRequest", "401": "Unauthorized", "404": "NotFound", "503": "Unavailable"}
    found: Schema = {
        "200": ok,
        "401": {"$ref": "#/components/responses/Unauthorized"},
        "429": {"$ref": "#/components/responses/TooManyRequests"},
    }
    for code in errors:
        found[code] = {"$ref": f"#/components/responses/{codes[code]}"}
    return found


def _name(what: str, names: list[str]) -> Schema:
    parameter: Schema = {
        "name": "name",
        "in": "path",
        "required": True,
        "description": f"The {what}'s name in the configuration.",
        "schema": STRING,
    }
    if names:
        # A configured name, so a client (and a fuzzer's explicit phase) can try a real one.
        parameter["example"] = names[0]
    return parameter


SERIAL_PARAMETER: Schema = {
    "name": "serial",
    "in": "path",
    "required": True,
    "description": "Hexadecimal serial number (any case, colons allowed).",
    "schema": {"type": "string", "pattern": SERIAL_PATTERN, "maxLength": 128},
}


def _query(name: str, schema: Schema, description: str) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


LIMIT = {"type": "integer", "minimum": 1, "maximum": 1000}


def _paths(config: Config | None) -> dict[str, Schema]:
    platforms = [p.name for p in config.device_management_platforms] if config else []
    sources = [s.name for s in config.signal_sources] if config else []
    lookups = [p.name for p in config.lookup_policies] if config else []
    return {
        f"{API}/openapi.json": {
            "get": {
                "operationId": "getOpenApi",
                "summary": "This document",
                "security": [],
                "responses": {"200": _json({"type": "object"}, "The OpenAPI document.")},
            }
        },
        f"{API}/certificate-authorities": {
            "get": {
                "operationId": "listCertificateAuthorities",
                "summary": "The CAs the signer has loaded",
                "tags": ["certificate authorities"],
                "responses": _responses(
                    _json(_list_of("certificate_authorities", "CertificateAuthority"), "CAs"),
                    "503",
                ),
            }
        },
        f"{API}/templates": {
            "get": {
                "operationId": "listTemplates",
                "summary": "The certificate templates",
                "tags": ["templates"],
                "responses": _responses(_json(_list_of("templates", "Template"), "Templates")),
            }
        },
        f"{API}/platforms": {
            "get": {
                "operationId": "listPlatforms",
                "summary": "Device management platforms",
                "tags": ["platforms"],
                "responses": _responses(_json(_list_of("platforms", "Platform"), "Platforms")),
            }
        },
        f"{API}/platforms/{{name}}/profile": {
            "get": {
                "operationId": "downloadProfile",
                "summary": "The platform's .mobileconfig (com.apple.security.acme payload)",
                "tags": ["platforms"],
                "parameters": [_name("platform", platforms)],
                "responses": _responses(
                    {
                        "description": "The configuration profile (XML plist, or CMS-signed).",
                        "content": {
                            "application/x-apple-aspen-config": {
                                "schema": {"type": "string", "format": "binary"}
                            }
                        },
                    },
                    "404",
                ),
            }
        },
        f"{API}/platforms/{{name}}/token/rotate": {
            "post": {
                "operationId": "rotatePlatformToken",
                "summary": "Mint a new enrollment token; the previous ones are refused at once",
                "tags": ["platforms"],
                "parameters": [_name("platform", platforms)],
                "responses": _responses(_json(_ref("TokenRotation"), "The new token"), "404"),
            }
        },
        f"{API}/signal-sources": {
            "get": {
                "operationId": "listSignalSources",
                "summary": "Signal sources (static inventories, Jamf Pro)",
                "tags": ["signal sources"],
                "responses": _responses(
                    _json(_list_of("signal_sources", "SignalSource"), "Signal sources")
                ),
            }
        },
        f"{API}/signal-sources/{{name}}/validate": {
            "post": {
                "operationId": "validateSignalSource",
                "summary": "Validate the source's connection or inventory",
                "tags": ["signal sources"],
                "parameters": [_name("signal source", sources)],
                "responses": _responses(
                    _json(_ref("SignalSourceValidation"), "What the validation found"),
                    "404",
                    "503",
                ),
            }
        },
        f"{API}/lookup-policies": {
            "get": {
                "operationId": "listLookupPolicies",
                "summary": "Lookup policies (the guide's security signal sources)",
                "tags": ["lookup policies"],
                "responses": _responses(
                    _json(_list_of("lookup_policies", "LookupPolicy"), "Lookup policies")
                ),
            }
        },
        f"{API}/lookup-policies/{{name}}/validate": {
            "post": {
                "operationId": "validateLookupPolicy",
                "summary": "Look a device up as the policy would: attributes, groups or why not",
                "tags": ["lookup policies"],
                "parameters": [_name("lookup policy", lookups)],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": _ref("LookupValidationRequest"),
                            "example": {"identity": "C02XXXXXXXXX"},
                        }
                    },
                },
                "responses": _responses(
                    _json(_ref("LookupValidation"), "The lookup's outcome"), "400", "404", "503"
                ),
            }
        },
        f"{API}/certificates": {
            "get": {
                "operationId": "listCertificates",
                "summary": "Search issued certificates, newest first",
                "tags": ["certificates"],
                "parameters": [
                    _query("device", STRING, "Attested device serial number."),
                    _query("account", STRING, "ACME account id."),
                    _query("ca", STRING, "Issuing CA name."),
                    _query("status", {"type": "string", "enum": list(STATUSES)}, "Status."),
                    _query("limit", {**LIMIT, "default": 100}, "At most this many."),
                ],
                "responses": _responses(
                    _json(_list_of("certificates", "Certificate"), "Matching certificates"),
                    "400",
                    "503",
                ),
            }
        },
        f"{API}/certificates/{{serial}}": {
            "get": {
                "operationId": "showCertificate",
                "summary": "One certificate with its names, chain and enrollment record",
                "tags": ["certificates"],
                "parameters": [SERIAL_PARAMETER],
                "responses": _responses(
                    _json(_object({"certificate": _ref("Certificate")}), "The certificate"),
                    "400",
                    "404",
                    "503",
                ),
            }
        },
        f"{API}/certificates/{{serial}}/revoke": {
            "post": {
                "operationId": "revokeCertificate",
                "summary": "Revoke a certificate (idempotent); CRL and OCSP follow",
                "tags": ["certificates"],
                "parameters": [SERIAL_PARAMETER],
                "requestBody": {
                    "required": False,
                    "content": {"application/json": {"schema": _ref("RevokeRequest")}},
                },
                "responses": _responses(
                    _json(
                        _object({"certificate": _ref("Certificate"), "revoked_now": BOOLEAN}),
                        "The certificate as it now stands",
                    ),
                    "400",
                    "404",
                    "503",
                ),
            }
        },
        f"{API}/enrollments": {
            "get": {
                "operationId": "listEnrollments",
                "summary": "Finished enrollments, newest first: completed and failed",
                "tags": ["enrollments"],
                "parameters": [
                    _query("outcome", {"type": "string", "enum": list(OUTCOMES)}, "Only these."),
                    _query("limit", {**LIMIT, "default": 50}, "At most this many."),
                ],
                "responses": _responses(
                    _json(_list_of("enrollments", "EnrollmentEvent"), "Enrollment events"), "400"
                ),
            }
        },
    }


def openapi_document(config: Config | None = None, *, version: str = "1.0.0") -> dict[str, Any]:
    """The whole OpenAPI 3.0 document (``config`` adds configured names as examples)."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "acmegate admin API",
            "version": version,
            "description": (
                "Operations on an acmegate gateway: certificate authorities, templates, device "
                "management platforms (profiles, enrollment tokens), signal sources and lookup "
                "policies (validation), certificates (search, revoke) and enrollment events. "
                "Every operation but this document needs `Authorization: Bearer <admin token>` "
                "(the `admin.token` secret). Errors are RFC 7807 problem documents."
            ),
        },
        "security": [{"bearerAuth": []}],
        "paths": _paths(config),
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The admin token (`admin.token` in the configuration).",
                }
            },
            "schemas": SCHEMAS,
            "responses": RESPONSES,
        },
    }
