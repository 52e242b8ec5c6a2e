"""An independent ACME client for end-to-end tests: certbot's ``acme`` library (5.x, josepy).

The gateway must interoperate with a client it was not written with. certbot's library knows neither
the ``permanent-identifier`` identifier type nor the ``device-attest-01`` challenge
(``ClientV2.new_order`` derives identifiers from a CSR's DNS and IP names only; an unknown challenge
decodes as ``UnrecognizedChallenge``), so this module registers both, builds the ``NewOrder`` itself
(``ClientV2.new_order`` derives DNS/IP identifiers from a CSR only) and answers the challenge with
an Apple-shaped attestation from the test attestation CA.

Synchronous (``requests``): call it from a thread, e.g. ``await asyncio.to_thread(...)``.
"""

from __future__ import annotations

import datetime
from typing import Any

from acme import challenges, client, messages
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from josepy.json_util import field
from josepy.jwa import ES256, ES384, ES512
from josepy.jwk import JWKEC

from acmegate.testkit.apple_ca import AttestationCA, LeafClaims
from acmegate.testkit.attobj import attestation_object, challenge_payload, freshness_code
from acmegate.testkit.csr import SubjectAltNames, build_csr, subject_name

DEVICE_ATTEST_01 = "device-attest-01"

# Constructing the constant registers it, so identifiers of this type decode in responses.
PERMANENT_IDENTIFIER = messages.IdentifierType("permanent-identifier")


@challenges.Challenge.register
class DeviceAttest01(challenges.Challenge):
    """The ``device-attest-01`` challenge (draft-ietf-acme-device-attest §5).

    The token stays a string: Apple hashes the token exactly as sent (docs/apple-attestation.md §7),
    whereas certbot's token challenges decode it into bytes.
    """

    typ = DEVICE_ATTEST_01
    token: str = field("token")


@challenges.ChallengeResponse.register
class DeviceAttest01Response(challenges.ChallengeResponse):
    """The challenge answer ``{"attObj": base64url(CBOR)}`` (docs/apple-attestation.md §3)."""

    typ = DEVICE_ATTEST_01
    att_obj: str = field("attObj")


def _account_client(directory_url: str, account_key: ec.EllipticCurvePrivateKey) -> client.ClientV2:
    # josepy defaults to RS256; an EC account key needs its matching alg (RFC 7518 §3.4).
    alg = {256: ES256, 384: ES384, 521: ES512}[account_key.curve.key_size]
    net = client.ClientNetwork(
        JWKEC(key=account_key), alg=alg, user_agent="acmegate-tests/certbot-acme"
    )
    directory = client.ClientV2.get_directory(directory_url, net)
    acme = client.ClientV2(directory, net)
    acme.new_account(messages.NewRegistration.from_data(terms_of_service_agreed=True))
    return acme


def _new_order(acme: client.ClientV2, identifier: str, csr_pem: bytes) -> messages.OrderResource:
    directory: Any = acme.directory
    new_nonce_url = directory["newNonce"]
    order = messages.NewOrder(
        identifiers=(messages.Identifier(typ=PERMANENT_IDENTIFIER, value=identifier),)
    )
    response = acme.net.post(directory["newOrder"], order, new_nonce_url=new_nonce_url)
    body = messages.Order.from_json(response.json())
    authorizations = []
    for url in body.authorizations:
        authz_response = acme.net.post(url, None, new_nonce_url=new_nonce_url)
        authorizations.append(
            messages.AuthorizationResource(
                body=messages.Authorization.from_json(authz_response.json()), uri=url
            )
        )
    return messages.OrderResource(
        body=body,
        uri=response.headers.get("Location"),
        authorizations=authorizations,
        csr_pem=csr_pem,
    )


def enroll_with_certbot_acme(
    directory_url: str,
    serial: str,
    attestation_ca: AttestationCA,
    *,
    client_identifier: str | None = None,
    claims: LeafClaims | None = None,
    device_key: ec.EllipticCurvePrivateKey | None = None,
    account_key: ec.EllipticCurvePrivateKey | None = None,
    subject: list[tuple[str, str]] | None = None,
    subject_alt_name: SubjectAltNames | None = None,
    timeout: float = 60.0,
) -> str:
    """Enroll a device (``client_identifier`` defaults to ``serial``) and return the PEM chain.

    Server problems surface as certbot's exceptions: ``acme.messages.Error`` for an error
    response, ``acme.errors.ValidationError`` when the authorization failed (the challenge's
    ``error`` inside), ``acme.errors.IssuanceError`` when the order became invalid.
    """
    identifier = client_identifier or serial
    claims = claims or LeafClaims.macos(serial)
    device_key = device_key or ec.generate_private_key(ec.SECP384R1())
    account_key = account_key or ec.generate_private_key(ec.SECP256R1())

    csr = build_csr(
        device_key,
        subject_name(subject or [("CN", identifier)]),
        sans=subject_alt_name,
    )
    csr_pem = csr.public_bytes(serialization.Encoding.PEM)

    acme = _account_client(directory_url, account_key)
    orderr = _new_order(acme, identifier, csr_pem)
    deadline = datetime.datetime.now() + datetime.timedelta(seconds=timeout)
    for authzr in orderr.authorizations:
        if authzr.body.status == messages.STATUS_VALID:
            continue
        challb = next(
            (c for c in authzr.body.challenges if isinstance(c.chall, DeviceAttest01)), None
        )
        if challb is None:
            raise AssertionError(f"no {DEVICE_ATTEST_01} challenge in {authzr.uri}")
        # Apple's freshness code: SHA-256 of the token string (docs/apple-attestation.md §7).
        leaf = attestation_ca.mint_leaf(
            device_key.public_key(), claims, freshness=freshness_code(challb.chall.token)
        )
        att_obj = attestation_object(attestation_ca.chain_for(leaf))
        answer = DeviceAttest01Response(att_obj=challenge_payload(att_obj)["attObj"])
        acme.answer_challenge(challb, answer)
    finalized = acme.poll_and_finalize(orderr, deadline)
    fullchain: str = finalized.fullchain_pem
    return fullchain
