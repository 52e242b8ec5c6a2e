"""The OpenAPI 3.1 document of the admin API, served at ``/api/v1/openapi.json``.

It is the contract the schemathesis test holds the live API to: every operation, parameter,
body, response (success and problem) and the bearer authentication. Built once when the
listener starts. The component schemas are generated from the msgspec structs the routes
encode and decode (``views.py``, ``acmegate.common.admin_messages``) with
``msgspec.json.schema_components``, whose JSON Schema 2020-12 is what OpenAPI 3.1 uses; the
operations, which no struct describes, are written here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import msgspec
import msgspec.inspect

from acmegate.common.admin_messages import CertificateAuthority, CertificateSummary, LookupReport
from acmegate.common.config import Config
from acmegate.frontend.admin.routes.certificates import (
    DEVICE_SERIAL_PATTERN,
    SERIAL_PATTERN,
    STATUSES,
)
from acmegate.frontend.admin.views import REQUEST_BODIES, RESPONSE_BODIES
from acmegate.frontend.db.enrollments import OUTCOMES

API = "/api/v1"

Schema = dict[str, Any]

_REF_TEMPLATE = "#/components/schemas/{name}"


def _ref(name: str) -> Schema:
    return {"$ref": _REF_TEMPLATE.format(name=name)}


def _object(properties: dict[str, Schema]) -> Schema:
    return {"type": "object", "properties": properties, "required": list(properties)}


def _list_of(key: str, item: str) -> Schema:
    return _object({key: {"type": "array", "items": _ref(item)}})


STRING: Schema = {"type": "string"}
BOOLEAN: Schema = {"type": "boolean"}

# Every body the API sends: the routes' own and the services' replies it passes on.
_RESPONSES: tuple[type[msgspec.Struct], ...] = (
    *RESPONSE_BODIES,
    CertificateAuthority,
    CertificateSummary,
    LookupReport,
)


def _structs(types: tuple[type[msgspec.Struct], ...]) -> Iterator[type[msgspec.Struct]]:
    """Every struct type reachable from ``types`` (fields, lists, unions, dicts)."""
    seen: set[type] = set()
    pending: list[msgspec.inspect.Type] = list(msgspec.inspect.multi_type_info(types))
    while pending:
        info = pending.pop()
        if isinstance(info, msgspec.inspect.StructType):
            if info.cls in seen:
                continue
            seen.add(info.cls)
            yield info.cls
            pending.extend(field.type for field in info.fields)
        elif isinstance(info, msgspec.inspect.UnionType):
            pending.extend(info.types)
        elif isinstance(info, msgspec.inspect.ListType | msgspec.inspect.SetType):
            pending.append(info.item_type)
        elif isinstance(info, msgspec.inspect.DictType):
            pending.append(info.value_type)


_RST = (
    (re.compile(r":(?:class|mod|func|meth|data):`~?(?:[\w.]+\.)?([\w]+)`"), r"`\1`"),
    (re.compile(r"``([^`]+)``"), r"`\1`"),
    (re.compile(r"\s*\n\s*"), " "),
)


def _markdown(text: str) -> str:
    """A docstring as an OpenAPI description (CommonMark): code in single backticks, one
    paragraph."""
    for pattern, replacement in _RST:
        text = pattern.sub(replacement, text)
    return text.strip()


def component_schemas() -> dict[str, Schema]:
    """The component schemas of every request and response body, from their structs.

    A response struct is encoded with all of its fields (none has ``omit_defaults``), so
    every property of its schema is required: the document promises what is always sent.
    Structs that omit defaults (the enrollment record, the device claims) keep msgspec's
    reading, where a field with a default may be absent.
    """
    _, components = msgspec.json.schema_components(
        (*_RESPONSES, *REQUEST_BODIES), ref_template=_REF_TEMPLATE
    )
    for struct in _structs(_RESPONSES):
        schema = components[struct.__name__]
        if not struct.__struct_config__.omit_defaults:
            schema["required"] = list(schema["properties"])
    for schema in components.values():
        schema.pop("title", None)  # the component's name already says it
        if "description" in schema:
            schema["description"] = _markdown(schema["description"])
    return components


def _problem(description: str) -> Schema:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": _ref("ProblemDocument")}},
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
                    _json(_ref("LookupReport"), "The lookup's outcome"), "400", "404", "503"
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
                    _json(_list_of("certificates", "CertificateSummary"), "Matching certificates"),
                    "400",
                    "503",
                ),
            }
        },
        f"{API}/devices/{{serial}}/certificates": {
            "get": {
                "operationId": "deviceCertificates",
                "summary": "A device's certificate history, newest first (re-enrollments "
                "revoke older ones as superseded when the policy says so)",
                "tags": ["certificates"],
                "parameters": [
                    {
                        "name": "serial",
                        "in": "path",
                        "required": True,
                        "description": "The attested device serial number.",
                        "schema": {"type": "string", "pattern": DEVICE_SERIAL_PATTERN},
                    }
                ],
                "responses": _responses(
                    _json(
                        _object(
                            {
                                "device_serial": STRING,
                                "certificates": {
                                    "type": "array",
                                    "items": _ref("CertificateSummary"),
                                },
                            }
                        ),
                        "The device's certificates",
                    ),
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
                    _json(_object({"certificate": _ref("CertificateSummary")}), "The certificate"),
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
                        _object(
                            {"certificate": _ref("CertificateSummary"), "revoked_now": BOOLEAN}
                        ),
                        "The certificate as it now stands",
                    ),
                    "400",
                    "404",
                    "503",
                ),
            }
        },
        f"{API}/eab-keys": {
            "get": {
                "operationId": "listEabKeys",
                "summary": "External Account Binding keys (RFC 8555 §7.3.4), newest first",
                "tags": ["external account binding"],
                "responses": _responses(_json(_list_of("eab_keys", "EabKey"), "EAB keys")),
            },
            "post": {
                "operationId": "createEabKey",
                "summary": "Issue an EAB key id and HMAC key (the HMAC key is shown only here)",
                "tags": ["external account binding"],
                "requestBody": {
                    "required": False,
                    "content": {"application/json": {"schema": _ref("EabKeyRequest")}},
                },
                "responses": _responses(
                    _json(_ref("EabKeyCreated"), "The key id and its HMAC key"), "400"
                ),
            },
        },
        f"{API}/eab-keys/{{key_id}}/revoke": {
            "post": {
                "operationId": "revokeEabKey",
                "summary": "Revoke an EAB key: it binds no account from now on",
                "tags": ["external account binding"],
                "parameters": [
                    {
                        "name": "key_id",
                        "in": "path",
                        "required": True,
                        "description": "The EAB key id.",
                        "schema": STRING,
                    }
                ],
                "responses": _responses(
                    _json(_ref("EabKeyRevocation"), "The key as it now stands"), "404"
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
    """The whole OpenAPI 3.1 document (``config`` adds configured names as examples)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "acmegate admin API",
            "version": version,
            "description": (
                "Operations on an acmegate gateway: certificate authorities, templates, device "
                "management platforms (profiles, enrollment tokens), signal sources and lookup "
                "policies (validation), certificates (search, revoke), enrollment events and "
                "External Account Binding keys. "
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
            "schemas": component_schemas(),
            "responses": RESPONSES,
        },
    }
