"""``/api/v1/templates``: the certificate templates of the configuration."""

from __future__ import annotations

from aiohttp import web

from acmegate.common.config import seconds
from acmegate.common.config.model import CertificateTemplateConfig
from acmegate.frontend.admin.context import ADMIN
from acmegate.frontend.admin.render import json_response
from acmegate.frontend.admin.views import CsrRule, SubjectAltNames, Template


def template_json(template: CertificateTemplateConfig) -> Template:
    san = template.san
    return Template(
        name=template.name,
        description=template.description,
        subject=template.subject,
        subject_alt_names=SubjectAltNames(
            dns=san.dns,
            rfc822=san.rfc822,
            uri=san.uri,
            ip=san.ip,
            other_name=san.other_name,
            permanent_identifier=san.permanent_identifier,
        ),
        required=template.required,
        csr_rules={
            path: CsrRule(equals=rule.equals_list, matches=rule.matches_list)
            for path, rule in template.csr_rules.items()
        },
        validity_seconds=seconds(template.validity),
        signature_algorithm=template.signature_algorithm,
        key_usage=list(template.key_usage),
        extended_key_usage=template.extended_key_usage,
    )


async def list_templates(request: web.Request) -> web.Response:
    config = request.app[ADMIN].frontend.config
    return json_response({"templates": [template_json(t) for t in config.certificate_templates]})
