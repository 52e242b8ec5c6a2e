"""Gateway configuration for server certificates (issue #15) in tests, and an ACME client
for them: certbot's ``acme`` library, which knows ``dns`` identifiers and the standard
challenges natively."""

from __future__ import annotations

import datetime
import json
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import yaml
from acme import challenges, client, messages
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from josepy.jwa import ES256
from josepy.jwk import JWKEC

from tests.support.challtestsrv import ChallTestSrv

SERVER_TEMPLATE = {
    "name": "server",
    "validity": "90d",
    "key_usage": ["digital_signature", "key_encipherment"],
    "extended_key_usage": ["server_auth"],
}
CA_IDENTITY = "acmegate.test"


def add_server_policy(
    config_path: Path,
    responder: ChallTestSrv | None,
    *,
    domains: Sequence[str] = ("*.example.test",),
    ip_networks: Sequence[str] = ("127.0.0.0/8",),
    wildcards: bool = True,
    validation: dict[str, Any] | None = None,
) -> None:
    """Give a test gateway's configuration a server policy and point validation at
    ``responder`` (its DNS server and challenge ports)."""
    config = yaml.safe_load(config_path.read_text())
    config["certificate_templates"].append(SERVER_TEMPLATE)
    config["enrollment_policies"].append(
        {
            "name": "servers",
            "certificate_authority": "devices",
            "certificate_template": "server",
            "server_names": {
                "domains": list(domains),
                "ip_networks": list(ip_networks),
                "wildcards": wildcards,
            },
        }
    )
    settings: dict[str, Any] = {"timeout": "5s", "caa": {"identities": [CA_IDENTITY]}}
    if responder is not None:
        settings |= {
            "http_port": responder.http_port,
            "tls_alpn_port": responder.tls_alpn_port,
            "resolver": {"nameservers": [responder.nameserver], "timeout": "2s"},
        }
    config["validation"] = settings | (validation or {})
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))


def account(directory_url: str) -> client.ClientV2:
    """A new ACME account (EC P-256 key) on ``directory_url``."""
    key = ec.generate_private_key(ec.SECP256R1())
    net = client.ClientNetwork(JWKEC(key=key), alg=ES256, user_agent="acmegate-tests/server")
    acme = client.ClientV2(client.ClientV2.get_directory(directory_url, net), net)
    acme.new_account(messages.NewRegistration.from_data(terms_of_service_agreed=True))
    return acme


def server_csr(names: Sequence[str], key: ec.EllipticCurvePrivateKey | None = None) -> bytes:
    """A PEM CSR naming ``names`` (DNS names and IP addresses) in its SAN, CN the first
    (unless it is an address)."""
    import ipaddress

    key = key or ec.generate_private_key(ec.SECP256R1())
    general: list[x509.GeneralName] = []
    for name in names:
        try:
            general.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            general.append(x509.DNSName(name))
    # A CN is a DNS name to ACME clients (the acme library orders it as one): none for IPs.
    cn = [] if isinstance(general[0], x509.IPAddress) else [names[0]]
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, n) for n in cn]))
        .add_extension(x509.SubjectAlternativeName(general), critical=False)
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def challenge_of(
    authzr: messages.AuthorizationResource, kind: type[challenges.Challenge]
) -> messages.ChallengeBody:
    found = [c for c in authzr.body.challenges if isinstance(c.chall, kind)]
    assert found, f"no {kind.typ} in {[c.chall.typ for c in authzr.body.challenges]}"
    return found[0]


Prepare = Callable[[client.ClientV2, messages.ChallengeBody, str], Awaitable[None]]


def deadline(seconds: float = 30) -> datetime.datetime:
    return datetime.datetime.now() + datetime.timedelta(seconds=seconds)


def key_authorization(acme: client.ClientV2, token: str) -> str:
    """RFC 8555 §8.1: token "." base64url(JWK thumbprint of the account key)."""
    import josepy

    return f"{token}.{josepy.b64.b64encode(acme.net.key.thumbprint()).decode()}"


def token_of(challb: messages.ChallengeBody) -> str:
    """The token of any challenge, recognised by the ``acme`` library or not (tls-alpn-01)."""
    return str(challb.to_partial_json()["token"])


def challenge_named(authzr: messages.AuthorizationResource, typ: str) -> messages.ChallengeBody:
    found = [c for c in authzr.body.challenges if c.to_partial_json()["type"] == typ]
    assert found, f"no {typ} challenge"
    return found[0]


def answer(acme: client.ClientV2, challb: messages.ChallengeBody) -> None:
    """POST ``{}`` to the challenge: the answer of http-01, dns-01 and tls-alpn-01."""
    acme.answer_challenge(challb, challenges.HTTP01Response())


def failed_problem(acme: client.ClientV2, order: messages.OrderResource) -> dict[str, Any]:
    """The problem of the first failed challenge of ``order`` once its authorizations are done
    (the challenge error as the client reads it)."""
    from acme import errors

    try:
        acme.poll_authorizations(order, deadline())
    except errors.ValidationError as failure:
        for authzr in failure.failed_authzrs:
            for challb in authzr.body.challenges:
                if challb.error is not None:
                    return dict(json.loads(challb.error.json_dumps()))
    raise AssertionError("the order's authorizations did not fail")
