"""Certificate templates: parsed once with errors naming the key, rendered safely per order."""

from __future__ import annotations

from pathlib import Path

import pytest

from acmegate.common.config import load_config
from acmegate.common.config.model import CertificateTemplateConfig, CsrValueRule, SanTemplate
from acmegate.common.errors import AcmeError, ErrorKind
from acmegate.common.messages import NameAttribute, SanEntry
from acmegate.policy.csr_rules import CSR_LABELS
from acmegate.policy.sources import DeviceRecord
from acmegate.policy.subject_dn import parse_subject
from acmegate.policy.templates import (
    CompiledTemplate,
    TemplateError,
    compile_template,
    compile_templates,
)
from acmegate.policy.variables import RenderContext, VariableError
from tests.unit.policy.builders import SERIAL, claims, csr, make_config

CN, ORG, OU = "2.5.4.3", "2.5.4.10", "2.5.4.11"
WHERE = "$.certificate_templates[0]"


# The rendering tests admit every CSR value on purpose, so that they test rendering; the rules
# themselves are tested in their own section below.
ANY_CSR_VALUE = {path: CsrValueRule(matches=".*") for path in CSR_LABELS}


def template(**fields: object) -> CompiledTemplate:
    fields.setdefault("name", "t")
    fields.setdefault("csr_rules", ANY_CSR_VALUE)
    config = CertificateTemplateConfig(**fields)  # type: ignore[arg-type]
    return compile_template(config, where=WHERE, source_attributes={"department", "email", "upn"})


def problems_of(**fields: object) -> list[str]:
    with pytest.raises(TemplateError) as raised:
        template(**fields)
    return raised.value.problems


def context(
    info: object = None, record: DeviceRecord | None = None, device: object = "default"
) -> RenderContext:
    return RenderContext(
        csr=info if info is not None else csr(),  # type: ignore[arg-type]
        device=claims() if device == "default" else device,  # type: ignore[arg-type]
        identifiers=[],
        record=record,
        signal_source="inventory" if record else None,
    )


# --- parsing ---------------------------------------------------------------------------------


def test_an_unknown_variable_in_the_subject_is_an_error_naming_the_key() -> None:
    problems = problems_of(subject="CN=${/csr/subject/cn}")
    assert len(problems) == 1
    assert problems[0].startswith(f"{WHERE}.subject: unknown variable ${{/csr/subject/cn}}")


def test_an_unknown_variable_in_a_san_entry_names_the_entry() -> None:
    problems = problems_of(san=SanTemplate(dns=["${/csr/san/dnsname}", "${/csr/san/dns}"]))
    assert problems[0].startswith(f"{WHERE}.san.dns[1]: unknown variable ${{/csr/san/dns}}")


def test_every_problem_of_every_template_is_reported_at_once() -> None:
    config = make_config(
        """
        certificate_templates:
          - name: a
            subject: "CN=${/nope}"
          - name: b
            san: {rfc822: ["${/csr/san/rfc822name", "${/source/nickname}"]}
            extended_key_usage: [client_auth, smartcard_logon]
        """
    )
    with pytest.raises(TemplateError) as raised:
        compile_templates(config, source_attributes={"department"})
    problems = raised.value.problems
    assert [p.split(":")[0] for p in problems] == [
        "$.certificate_templates[0].subject",
        "$.certificate_templates[1].san.rfc822[0]",
        "$.certificate_templates[1].san.rfc822[1]",
        "$.certificate_templates[1].extended_key_usage[1]",
    ]
    assert "unterminated '${'" in problems[1]
    assert "no signal source offers the attribute 'nickname'" in problems[2]
    assert "unknown extended key usage 'smartcard_logon'" in problems[3]


@pytest.mark.parametrize(
    ("subject", "message"),
    [
        ("CN=${/csr/subject/commonname", "unterminated '${'"),
        ("CN=a,,O=b", "RDN 2 is empty"),
        ("CN", "RDN 1 has no '='"),
        ("XX=1", "unknown attribute type 'XX'"),
        ("CN=a+UID=b", "multi-valued RDNs are not supported"),
        ("CN=", "CN has an empty value"),
        ("C=USA", "two-letter country code"),
        ("CN=trailing\\", "dangling"),
    ],
)
def test_malformed_subjects_are_refused_with_the_reason(subject: str, message: str) -> None:
    problems = problems_of(subject=subject)
    assert problems[0].startswith(f"{WHERE}.subject: ")
    assert message in problems[0]


def test_escaped_commas_and_hex_escapes_stay_inside_their_value() -> None:
    parsed = parse_subject(r"CN=x, O=Example\, Inc., OU=Caf\C3\A9 \2C Bar, L=a\=b")
    assert [(a.name, a.oid, a.value.literal) for a in parsed] == [
        ("CN", CN, "x"),
        ("O", ORG, "Example, Inc."),
        ("OU", OU, "Café , Bar"),
        ("L", "2.5.4.7", "a=b"),
    ]


def test_attribute_types_are_short_names_in_any_case_or_dotted_oids() -> None:
    parsed = parse_subject(
        "cn=a,emailAddress=b@example.com,E=c@example.com,2.5.4.97=VAT-1,OID.2.5.4.5=7,"
        "DC=example,UID=u,STREET=s,ST=Bavaria"
    )
    assert [a.oid for a in parsed] == [
        CN,
        "1.2.840.113549.1.9.1",
        "1.2.840.113549.1.9.1",
        "2.5.4.97",
        "2.5.4.5",
        "0.9.2342.19200300.100.1.25",
        "0.9.2342.19200300.100.1.1",
        "2.5.4.9",
        "2.5.4.8",
    ]


def test_a_variable_value_cannot_inject_an_rdn() -> None:
    info = csr("evil,O=Attacker+OU=x\\", dns=[])
    spec = template(subject="CN=${/csr/subject/commonname},O=Example").render(
        ca="ca", context=context(info)
    )
    assert spec.subject == [
        NameAttribute(CN, "evil,O=Attacker+OU=x\\"),
        NameAttribute(ORG, "Example"),
    ]


def test_required_entries_must_name_something_the_template_has() -> None:
    problems = problems_of(
        subject="CN=${/csr/subject/commonname}",
        required=["subject.OU", "san.dns", "issuer"],
    )
    assert problems == [
        f"{WHERE}.required[0]: the subject has no attribute 'OU'",
        f"{WHERE}.required[1]: the template has no san.dns entry",
        f"{WHERE}.required[2]: unknown entry 'issuer': use subject, subject.<attribute>, san, "
        "san.dns, san.rfc822, san.uri, san.ip, san.other_name or san.permanent_identifier",
    ]


def test_a_literal_san_value_is_checked_at_start() -> None:
    problems = problems_of(san=SanTemplate(ip=["10.0.0.300"], dns=[""]))
    assert problems == [
        f"{WHERE}.san.dns[0]: dNSName '' is empty",
        f"{WHERE}.san.ip[0]: iPAddress '10.0.0.300' is not an IP address",
    ]


# --- rendering -------------------------------------------------------------------------------


def test_the_spec_carries_key_validity_hash_usages_ca_and_template_name() -> None:
    info = csr()
    spec = template(
        name="wifi",
        validity="90d",
        signature_algorithm="sha384",
        key_usage=["digital_signature", "key_agreement"],
        extended_key_usage=["client_auth", "server_auth", "1.3.6.1.4.1.311.20.2.2", "client_auth"],
    ).render(ca="devices-ca", context=context(info))
    assert spec.ca == "devices-ca"
    assert spec.template == "wifi"
    assert spec.public_key == info.public_key
    assert spec.validity_seconds == 90 * 86400
    assert spec.signature_hash == "sha384"
    assert spec.key_usage == ["digital_signature", "key_agreement"]
    assert spec.extended_key_usage == [
        "1.3.6.1.5.5.7.3.2",
        "1.3.6.1.5.5.7.3.1",
        "1.3.6.1.4.1.311.20.2.2",
    ]
    assert spec.subject == [NameAttribute(CN, SERIAL)]


def test_every_eku_name_maps_to_its_oid() -> None:
    names = ["server_auth", "client_auth", "code_signing", "email_protection"]
    names += ["time_stamping", "ocsp_signing"]
    spec = template(extended_key_usage=names).render(ca="ca", context=context())
    assert spec.extended_key_usage == [f"1.3.6.1.5.5.7.3.{n}" for n in (1, 2, 3, 4, 8, 9)]


def test_a_san_entry_that_is_one_variable_yields_one_name_per_value() -> None:
    info = csr(dns=["a.example.com", "b.example.com", "c.example.com"])
    spec = template(
        subject="",
        san=SanTemplate(dns=["${/csr/san/dnsname}", "${/csr/san/dnsname}.corp", "a.example.com"]),
    ).render(ca="ca", context=context(info))
    assert spec.subject == []
    assert spec.sans == [
        SanEntry("dns", "a.example.com"),
        SanEntry("dns", "b.example.com"),
        SanEntry("dns", "c.example.com"),
        SanEntry("dns", "a.example.com.corp"),
    ]


def test_a_multi_valued_variable_in_the_subject_uses_its_first_value() -> None:
    info = csr(None, dns=["first.example.com", "second.example.com"])
    spec = template(subject="CN=${/csr/san/dnsname}").render(ca="ca", context=context(info))
    assert spec.subject == [NameAttribute(CN, "first.example.com")]


def test_values_from_the_csr_device_order_and_source_all_render() -> None:
    record = DeviceRecord(SERIAL, None, True, {"department": "IT", "email": "a@example.com"})
    info = csr(emails=["me@example.com"], upns=["me@corp"], permanent_identifiers=[SERIAL])
    spec = template(
        subject="CN=${/device/serialnumber},OU=${/source/department},"
        "serialNumber=${/device/udid},L=${/device/osversion}/${/device/seposversion}/${/device/model}",
        san=SanTemplate(
            rfc822=["${/csr/san/rfc822name}", "${/source/email}"],
            other_name=["${/csr/san/othername}"],
            permanent_identifier=["${/csr/san/permanentidentifier}"],
            uri=["urn:device:${/device/serialnumber}"],
        ),
    ).render(ca="ca", context=context(info, record))
    assert spec.subject == [
        NameAttribute(CN, SERIAL),
        NameAttribute(OU, "IT"),
        NameAttribute("2.5.4.5", "00008103-001A2B3C4D5E6F70"),
        NameAttribute("2.5.4.7", "17.4.1/17.4/J514sAP"),
    ]
    assert spec.sans == [
        SanEntry("rfc822", "me@example.com"),
        SanEntry("rfc822", "a@example.com"),
        SanEntry("uri", f"urn:device:{SERIAL}"),
        SanEntry("upn", "me@corp"),
        SanEntry("permanent_identifier", SERIAL),
    ]


def test_an_entry_that_renders_empty_is_dropped_when_not_required() -> None:
    spec = template(
        subject="CN=${/csr/subject/commonname},OU=${/source/department},O=Example",
        san=SanTemplate(dns=["${/csr/san/dnsname}", "${/device/udid}.devices.example.com"]),
    ).render(ca="ca", context=context(csr(dns=[]), device=claims(udid=None)))
    assert spec.subject == [NameAttribute(CN, SERIAL), NameAttribute(ORG, "Example")]
    assert spec.sans == []  # never ".devices.example.com"


def test_a_required_san_the_csr_lacks_is_a_bad_csr_naming_the_variable() -> None:
    compiled = template(
        name="wifi", san=SanTemplate(dns=["${/csr/san/dnsname}"]), required=["san.dns"]
    )
    with pytest.raises(AcmeError) as raised:
        compiled.render(ca="ca", context=context(csr(dns=[])))
    assert raised.value.kind is ErrorKind.BAD_CSR
    assert raised.value.detail == (
        "template 'wifi' needs ${/csr/san/dnsname} but the CSR has no dNSName"
    )


def test_a_required_subject_attribute_the_csr_lacks_is_a_bad_csr() -> None:
    compiled = template(name="t", subject="CN=${/csr/subject/commonname}", required=["subject"])
    with pytest.raises(AcmeError) as raised:
        compiled.render(ca="ca", context=context(csr(None)))
    assert raised.value.kind is ErrorKind.BAD_CSR
    assert "needs ${/csr/subject/commonname} but the CSR has no subject commonName" in str(
        raised.value
    )


def test_a_required_source_attribute_the_device_lacks_is_unauthorized() -> None:
    compiled = template(name="t", subject="OU=${/source/department}", required=["subject.OU"])
    with pytest.raises(AcmeError) as raised:
        compiled.render(ca="ca", context=context(record=DeviceRecord(SERIAL, None, True, {})))
    assert raised.value.kind is ErrorKind.UNAUTHORIZED
    assert raised.value.detail == (
        "template 't' needs ${/source/department} but signal source 'inventory' has no "
        "attribute 'department' for this device"
    )
    with pytest.raises(AcmeError, match="no signal source was consulted"):
        compiled.render(ca="ca", context=context())


def test_a_rendered_value_that_cannot_be_encoded_is_a_bad_csr() -> None:
    with pytest.raises(AcmeError, match="renders a dNSName 'bad name' that is not a DNS name"):
        template(san=SanTemplate(dns=["${/csr/san/dnsname}"])).render(
            ca="ca", context=context(csr(dns=["bad name"]))
        )
    with pytest.raises(AcmeError, match="longer than 64"):
        template().render(ca="ca", context=context(csr("x" * 65)))


def test_a_variable_parse_error_is_a_value_error() -> None:
    with pytest.raises(VariableError):
        parse_subject("CN=${/device/imei}")


# --- CSR value rules -------------------------------------------------------------------------

UPN_TEMPLATE = {
    "subject": "CN=${/csr/subject/commonname}",
    "san": SanTemplate(other_name=["${/csr/san/othername}"]),
    "csr_rules": {"/csr/san/othername": CsrValueRule(equals="${/source/upn}")},
}
LLAMA = DeviceRecord(SERIAL, None, True, {"upn": "llama@corp.example", "department": "I.T"})


def refusal_of(compiled: CompiledTemplate, render: RenderContext) -> str:
    with pytest.raises(AcmeError) as raised:
        compiled.render(ca="ca", context=render)
    assert raised.value.kind is ErrorKind.BAD_CSR
    return raised.value.detail


def test_a_csr_upn_naming_the_administrator_is_not_issued() -> None:
    """The issue's case: a device wrote administrator@corp.example as its UPN."""
    compiled = template(name="wifi", **UPN_TEMPLATE)
    forged = context(csr(upns=["administrator@corp.example"]), LLAMA)
    assert refusal_of(compiled, forged) == (
        "template 'wifi': the CSR's UPN otherName 'administrator@corp.example' is not admitted "
        "by csr_rules./csr/san/othername (equals ${/source/upn})"
    )
    honest = compiled.render(ca="ca", context=context(csr(upns=["llama@corp.example"]), LLAMA))
    assert honest.sans == [SanEntry("upn", "llama@corp.example")]
    # The source has no UPN for the device: nothing to compare with, nothing issued.
    nameless = DeviceRecord(SERIAL, None, True, {})
    assert "is not admitted" in refusal_of(
        compiled, context(csr(upns=["llama@corp.example"]), nameless)
    )


def test_a_pattern_expands_trusted_values_escaped_and_must_match_whole() -> None:
    compiled = template(
        san=SanTemplate(dns=["${/csr/san/dnsname}"], rfc822=["${/csr/san/rfc822name}"]),
        csr_rules={
            "/csr/san/dnsname": CsrValueRule(matches=r"^${/device/serialnumber}\.corp\.example$"),
            "/csr/san/rfc822name": CsrValueRule(matches=["${/source/department}@corp"]),
        },
    )
    good = csr(dns=[f"{SERIAL.lower()}.corp.example"], emails=["I.T@corp"])
    spec = compiled.render(ca="ca", context=context(good, LLAMA))
    assert [entry.value for entry in spec.sans] == [f"{SERIAL.lower()}.corp.example", "I.T@corp"]
    for bad in (
        csr(dns=["C02OTHER0000.corp.example"], emails=["I.T@corp"]),
        csr(dns=[f"{SERIAL}.corp.example.attacker.net"], emails=["I.T@corp"]),
        csr(dns=[f"x{SERIAL}.corp.example"], emails=["I.T@corp"]),
        # "." of the department is a literal dot, not "any character".
        csr(dns=[f"{SERIAL}.corp.example"], emails=["IXT@corp"]),
    ):
        assert "is not admitted by csr_rules" in refusal_of(compiled, context(bad, LLAMA))
    detail = refusal_of(compiled, context(bad, LLAMA))
    assert detail.endswith("(matches '${/source/department}@corp')")


def test_every_value_that_lands_is_checked() -> None:
    compiled = template(
        san=SanTemplate(dns=["${/csr/san/dnsname}"]),
        csr_rules={"/csr/san/dnsname": CsrValueRule(equals=["${/device/serialnumber}.lan"])},
    )
    names = [f"{SERIAL}.lan", "intranet.corp.example", f"{SERIAL}.LAN"]
    assert refusal_of(compiled, context(csr(dns=names))) == (
        "template 't': the CSR's dNSName 'intranet.corp.example' is not admitted by "
        "csr_rules./csr/san/dnsname (equals ${/device/serialnumber}.lan)"
    )
    # DNS names compare without regard to case (RFC 4343).
    spec = compiled.render(ca="ca", context=context(csr(dns=[names[0], names[2]])))
    assert [entry.value for entry in spec.sans] == [names[0], names[2]]


def test_the_common_name_and_permanent_identifier_default_to_the_attested_identity() -> None:
    compiled = compile_template(
        CertificateTemplateConfig(
            name="t",
            san=SanTemplate(permanent_identifier=["${/csr/san/permanentidentifier}"]),
        ),
        where=WHERE,
    )
    spec = compiled.render(ca="ca", context=context(csr(permanent_identifiers=[SERIAL])))
    assert spec.subject == [NameAttribute(CN, SERIAL)]
    assert refusal_of(compiled, context(csr("administrator"))) == (
        "template 't': the CSR's subject commonName 'administrator' is not admitted by the "
        "default rule of ${/csr/subject/commonname} (equals ${/device/serialnumber} or "
        "equals ${/device/udid})"
    )
    udid = claims().udid
    assert udid is not None
    assert compiled.render(ca="ca", context=context(csr(udid))).subject == [NameAttribute(CN, udid)]
    # A rule of its own replaces the default.
    own = compile_template(
        CertificateTemplateConfig(
            name="t",
            csr_rules={"/csr/subject/commonname": CsrValueRule(matches="[a-z]+")},
        ),
        where=WHERE,
    )
    assert own.render(ca="ca", context=context(csr("administrator"))).subject == [
        NameAttribute(CN, "administrator")
    ]


def test_a_csr_variable_without_a_rule_does_not_load() -> None:
    problems = problems_of(
        subject="CN=${/csr/san/dnsname}",
        san=SanTemplate(dns=["${/csr/san/dnsname}"], rfc822=["${/csr/san/rfc822name}"]),
        csr_rules={},
    )
    assert problems == [
        f"{WHERE}.subject: ${{/csr/san/dnsname}} comes from the CSR and has no rule: add "
        "csr_rules./csr/san/dnsname with equals or matches",
        f"{WHERE}.san.rfc822[0]: ${{/csr/san/rfc822name}} comes from the CSR and has no rule: "
        "add csr_rules./csr/san/rfc822name with equals or matches",
    ]


def test_every_rule_problem_names_its_key() -> None:
    rules = WHERE + ".csr_rules."
    problems = problems_of(
        san=SanTemplate(dns=["${/csr/san/dnsname}"], other_name=["${/csr/san/othername}"]),
        csr_rules={
            "/csr/san/dnsname": CsrValueRule(matches=["(unclosed", "${/csr/subject/commonname}"]),
            "/csr/san/othername": CsrValueRule(),
            "/csr/san/nickname": CsrValueRule(equals="x"),
            "${/csr/san/uri}": CsrValueRule(equals="x"),
            "/csr/san/rfc822name": CsrValueRule(equals=["${/source/nickname}", ""]),
        },
    )
    assert [problem.split(": ")[0] for problem in problems] == [
        rules + "/csr/san/dnsname.matches[0]",
        rules + "/csr/san/dnsname.matches[1]",
        rules + "/csr/san/othername",
        rules + "/csr/san/nickname",
        rules + "${/csr/san/uri}",
        rules + "/csr/san/rfc822name.equals[0]",
        rules + "/csr/san/rfc822name.equals[1]",
    ]
    assert "not a valid regular expression: missing ), unterminated subpattern" in problems[0]
    assert "${/csr/subject/commonname} comes from the CSR itself" in problems[1]
    assert "a rule needs equals or matches" in problems[2]
    assert "not a CSR variable; one of /csr/san/dnsname" in problems[3]
    assert "write the path without ${ }" in problems[4]
    assert "no signal source offers the attribute 'nickname'" in problems[5]
    assert problems[6].endswith("is empty")


def test_a_rule_loads_from_yaml_with_single_values_or_lists() -> None:
    config = make_config(
        r"""
        certificate_templates:
          - name: wifi
            san:
              dns: ["${/csr/san/dnsname}"]
              other_name: ["${/csr/san/othername}"]
            csr_rules:
              /csr/san/dnsname:
                matches: '^${/device/serialnumber}\.corp\.example$'
              /csr/san/othername:
                equals: ["${/source/upn}", "${/source/email}"]
        """
    )
    [wifi] = config.certificate_templates
    assert wifi.csr_rules["/csr/san/dnsname"].matches_list == [
        r"^${/device/serialnumber}\.corp\.example$"
    ]
    compiled = compile_templates(config, {"upn", "email"})["wifi"]
    info = csr(dns=[f"{SERIAL}.corp.example"], upns=["alice@example.com"])
    record = DeviceRecord(SERIAL, None, True, {"email": "alice@example.com"})
    assert len(compiled.render(ca="ca", context=context(info, record)).sans) == 2


def test_the_shipped_dev_template_keeps_the_guides_variables_but_not_forged_values() -> None:
    config = load_config(Path(__file__).resolve().parents[3] / "examples" / "dev.yaml")
    compiled = compile_templates(config)["jamf-device"]
    demo = DeviceRecord(
        SERIAL, None, True, {"email": "demo@example.com", "upn": "demo@corp.example"}
    )
    honest = csr(
        dns=[f"{SERIAL.lower()}.corp.example"],
        emails=["demo@example.com"],
        upns=["demo@corp.example"],
    )
    spec = compiled.render(ca="devices", context=context(honest, demo))
    assert spec.sans == [
        SanEntry("dns", f"{SERIAL.lower()}.corp.example"),
        SanEntry("rfc822", "demo@example.com"),
        SanEntry("upn", "demo@corp.example"),
        SanEntry("permanent_identifier", SERIAL),
    ]
    forged = csr(upns=["administrator@corp.example"])
    assert "'administrator@corp.example' is not admitted" in refusal_of(
        compiled, context(forged, demo)
    )
