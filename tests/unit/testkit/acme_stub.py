"""A tiny in-memory RFC 8555 + device-attest-01 server, to test the test clients themselves.

Not the gateway: just strict enough on the wire (JWS signature, nonce, url, kid/jwk, content
type) and on the Apple attestation (chain to the test root, freshness = SHA-256(token),
identifier = serial or UDID, CSR key = attested key) that a client bug shows up. Knobs make
it answer ``badNonce``, validate or issue asynchronously with ``Retry-After``, and tolerate
Apple's short JWS signatures (counting them) as step-ca does (docs/apple-attestation.md §10).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import cbor2
from aiohttp import web
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from acmegate.common.x509names import PERMANENT_IDENTIFIER, encode_permanent_identifier

PREFIX = "urn:ietf:params:acme:error:"
FRESHNESS = x509.ObjectIdentifier("1.2.840.113635.100.8.11.1")
SERIAL = x509.ObjectIdentifier("1.2.840.113635.100.8.9.1")
UDID = x509.ObjectIdentifier("1.2.840.113635.100.8.9.2")
_EC = {
    "ES256": (32, hashes.SHA256()),
    "ES384": (48, hashes.SHA384()),
    "ES512": (66, hashes.SHA512()),
}


class Problem(Exception):
    def __init__(self, kind: str, detail: str, status: int = 400, **extra: Any) -> None:
        super().__init__(detail)
        self.doc = {"type": PREFIX + kind, "detail": detail, "status": status, **extra}
        self.status = status


def _b64d(text: str) -> bytes:
    if "=" in text:
        raise ValueError("padding")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _jwk_key(jwk: dict[str, str]) -> ec.EllipticCurvePublicKey:
    curve = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1()}[jwk["crv"]]
    x = int.from_bytes(_b64d(jwk["x"]), "big")
    y = int.from_bytes(_b64d(jwk["y"]), "big")
    return ec.EllipticCurvePublicNumbers(x, y, curve).public_key()


def _spki(key: Any) -> bytes:
    return bytes(
        key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def _ext(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> bytes | None:
    try:
        value = cert.extensions.get_extension_for_oid(oid).value
    except x509.ExtensionNotFound:
        return None
    return bytes(getattr(value, "value", b""))


@dataclass
class StubConfig:
    trusted_root: x509.Certificate
    bad_nonces: int = 0
    """Reject this many otherwise good nonces with badNonce (like Pebble's NONCEREJECT)."""
    challenge_delay: float | None = None
    """Validate asynchronously: the challenge POST answers `processing`."""
    finalize_delay: float | None = None
    """Issue asynchronously: finalize answers `processing`."""
    retry_after: int = 1


@dataclass
class _Order:
    id: str
    account: str
    identifier: str
    status: str = "pending"
    error: dict[str, Any] | None = None
    attested_spki: bytes | None = None
    cert_pem: str | None = None
    ready_at: float = 0.0
    csr: x509.CertificateSigningRequest | None = None


@dataclass
class _Authz:
    id: str
    order: _Order
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    status: str = "pending"
    chall_status: str = "pending"
    chall_error: dict[str, Any] | None = None
    ready_at: float = 0.0
    payload: dict[str, Any] | None = None


class AcmeStub:
    """``app`` serves the directory at ``/dir``."""

    def __init__(self, config: StubConfig) -> None:
        self.config = config
        self.nonces: set[str] = set()
        self.accounts: dict[str, dict[str, str]] = {}  # url → jwk
        self.orders: dict[str, _Order] = {}
        self.authzs: dict[str, _Authz] = {}
        self.short_signatures = 0
        self.bad_nonces_sent = 0
        self.protected_headers: list[dict[str, Any]] = []
        self.polls: list[tuple[str, float]] = []
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Stub Issuing CA")])
        self.ca_cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.ca_key, hashes.SHA256())
        )
        self.app = web.Application(middlewares=[self._problems])
        self.app.router.add_get("/dir", self.directory)
        self.app.router.add_get("/new-nonce", self.new_nonce)
        self.app.router.add_post("/new-account", self.new_account)
        self.app.router.add_post("/new-order", self.new_order)
        self.app.router.add_post("/authz/{id}", self.authz)
        self.app.router.add_post("/chall/{id}", self.challenge)
        self.app.router.add_post("/order/{id}", self.order)
        self.app.router.add_post("/order/{id}/finalize", self.finalize)
        self.app.router.add_post("/cert/{id}", self.certificate)

    # -- plumbing ----------------------------------------------------------------------------

    def _nonce(self) -> str:
        nonce = secrets.token_urlsafe(16)
        self.nonces.add(nonce)
        return nonce

    @web.middleware
    async def _problems(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await handler(request)
        except Problem as problem:
            response = web.Response(
                status=problem.status,
                body=json.dumps(problem.doc),
                content_type="application/problem+json",
            )
        response.headers["Replay-Nonce"] = self._nonce()
        response.headers.add("Link", f'<{self._url(request, "/dir")}>;rel="index"')
        return response

    def _url(self, request: web.Request, path: str) -> str:
        return f"{request.scheme}://{request.host}{path}"

    async def _verify(self, request: web.Request, *, new_account: bool = False) -> tuple[Any, str]:
        """(payload or None for POST-as-GET, account URL or thumbprint)."""
        if request.content_type != "application/jose+json":
            raise Problem("malformed", "content type must be application/jose+json", 415)
        try:
            jws = json.loads(await request.read())
            header = json.loads(_b64d(jws["protected"]))
            signature = _b64d(jws["signature"])
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise Problem("malformed", f"bad JWS: {exc}") from None
        self.protected_headers.append(header)
        if header.get("url") != str(request.url):
            raise Problem("unauthorized", f"url {header.get('url')!r} != {request.url}", 401)
        nonce = header.get("nonce")
        if nonce not in self.nonces:
            raise Problem("badNonce", "unknown nonce")
        self.nonces.discard(nonce)
        if self.bad_nonces_sent < self.config.bad_nonces:
            self.bad_nonces_sent += 1
            raise Problem("badNonce", "nonce rejected (test knob)")
        if new_account:
            if "kid" in header or "jwk" not in header:
                raise Problem("malformed", "newAccount needs jwk, not kid")
            jwk = header["jwk"]
        else:
            if "jwk" in header or header.get("kid") not in self.accounts:
                raise Problem("accountDoesNotExist", "kid required and must exist", 400)
            jwk = self.accounts[header["kid"]]
        alg = header.get("alg")
        if alg not in _EC:
            raise Problem("badSignatureAlgorithm", f"{alg} not supported here")
        size, digest = _EC[alg]
        key = _jwk_key(jwk)
        signing_input = f"{jws['protected']}.{jws['payload']}".encode()
        missing = 2 * size - len(signature)
        # Apple's client drops leading zero bytes of R and/or S: try every left-padding.
        splits = [size] if missing == 0 else range(size - missing, size + 1)
        for split in splits:
            r, s = signature[:split], signature[split:]
            if len(r) > size or len(s) > size:
                continue
            der = encode_dss_signature(int.from_bytes(r, "big"), int.from_bytes(s, "big"))
            try:
                key.verify(der, signing_input, ec.ECDSA(digest))
            except InvalidSignature:
                continue
            if missing:
                self.short_signatures += 1
            break
        else:
            raise Problem("malformed", "JWS signature invalid")
        # newAccount gets the JWK to look up; other requests the account URL (kid).
        account = json.dumps(jwk, sort_keys=True) if new_account else header["kid"]
        payload = None if jws["payload"] == "" else json.loads(_b64d(jws["payload"]))
        return payload, account

    def _json(
        self, obj: Any, status: int = 200, headers: dict[str, str] | None = None
    ) -> web.Response:
        return web.Response(
            status=status, body=json.dumps(obj), content_type="application/json", headers=headers
        )

    # -- resources ---------------------------------------------------------------------------

    async def directory(self, request: web.Request) -> web.Response:
        names = {"newNonce": "/new-nonce", "newAccount": "/new-account", "newOrder": "/new-order"}
        return self._json({k: self._url(request, v) for k, v in names.items()})

    async def new_nonce(self, request: web.Request) -> web.Response:
        return web.Response(
            status=200 if request.method == "HEAD" else 204, headers={"Cache-Control": "no-store"}
        )

    async def new_account(self, request: web.Request) -> web.Response:
        _payload, jwk_json = await self._verify(request, new_account=True)
        jwk = json.loads(jwk_json)
        for url, known in self.accounts.items():
            if known == jwk:
                return self._json({"status": "valid"}, 200, {"Location": url})
        url = self._url(request, f"/acct/{secrets.token_hex(4)}")
        self.accounts[url] = jwk
        return self._json({"status": "valid"}, 201, {"Location": url})

    def _order_json(self, request: web.Request, order: _Order) -> dict[str, Any]:
        self._advance_order(order)
        authz = next(a for a in self.authzs.values() if a.order is order)
        body: dict[str, Any] = {
            "status": order.status,
            "identifiers": [{"type": "permanent-identifier", "value": order.identifier}],
            "authorizations": [self._url(request, f"/authz/{authz.id}")],
            "finalize": self._url(request, f"/order/{order.id}/finalize"),
        }
        if order.error:
            body["error"] = order.error
        if order.status == "valid":
            body["certificate"] = self._url(request, f"/cert/{order.id}")
        return body

    async def new_order(self, request: web.Request) -> web.Response:
        payload, account = await self._verify(request)
        identifiers = payload.get("identifiers")
        if not (
            isinstance(identifiers, list)
            and len(identifiers) == 1
            and identifiers[0].get("type") == "permanent-identifier"
        ):
            raise Problem("unsupportedIdentifier", "exactly one permanent-identifier")
        order = _Order(secrets.token_hex(4), account, identifiers[0]["value"])
        self.orders[order.id] = order
        authz = _Authz(secrets.token_hex(4), order)
        self.authzs[authz.id] = authz
        return self._json(
            self._order_json(request, order),
            201,
            {"Location": self._url(request, f"/order/{order.id}")},
        )

    def _authz_json(self, request: web.Request, authz: _Authz) -> dict[str, Any]:
        self._advance_authz(authz)
        challenge: dict[str, Any] = {
            "type": "device-attest-01",
            "url": self._url(request, f"/chall/{authz.id}"),
            "token": authz.token,
            "status": authz.chall_status,
        }
        if authz.chall_error:
            challenge["error"] = authz.chall_error
        return {
            "status": authz.status,
            "identifier": {"type": "permanent-identifier", "value": authz.order.identifier},
            "challenges": [challenge],
        }

    async def authz(self, request: web.Request) -> web.Response:
        await self._verify(request)
        authz = self.authzs[request.match_info["id"]]
        self.polls.append(("authz", time.monotonic()))
        body = self._authz_json(request, authz)
        headers = {"Retry-After": str(self.config.retry_after)} if authz.status == "pending" else {}
        return self._json(body, headers=headers)

    async def challenge(self, request: web.Request) -> web.Response:
        payload, _account = await self._verify(request)
        authz = self.authzs[request.match_info["id"]]
        if authz.chall_status == "pending":
            authz.payload = payload
            if self.config.challenge_delay is None:
                self._validate(authz)
            else:
                authz.chall_status = "processing"
                authz.ready_at = time.monotonic() + self.config.challenge_delay
        body = self._authz_json(request, authz)["challenges"][0]
        headers = {"Link": f'<{self._url(request, f"/authz/{authz.id}")}>;rel="up"'}
        if authz.chall_status == "processing":
            headers["Retry-After"] = str(self.config.retry_after)
        return self._json(body, headers=headers)

    def _advance_authz(self, authz: _Authz) -> None:
        if authz.chall_status == "processing" and time.monotonic() >= authz.ready_at:
            self._validate(authz)

    def _validate(self, authz: _Authz) -> None:
        try:
            spki = self._check_attestation(authz)
        except Problem as problem:
            authz.chall_status = authz.status = authz.order.status = "invalid"
            authz.chall_error = problem.doc
            return
        authz.chall_status = authz.status = "valid"
        authz.order.status = "ready"
        authz.order.attested_spki = spki

    def _check_attestation(self, authz: _Authz) -> bytes:
        payload = authz.payload or {}
        if "error" in payload:
            raise Problem("rejectedIdentifier", f"payload contained error: {payload['error']}")
        try:
            att = cbor2.loads(_b64d(payload["attObj"]))
        except (KeyError, ValueError, binascii.Error, cbor2.CBORDecodeError) as exc:
            raise Problem("badAttestationStatement", f"attObj unreadable: {exc}") from None
        if att.get("fmt") != "apple":
            raise Problem("badAttestationStatement", "unsupported format")
        x5c = att.get("attStmt", {}).get("x5c")
        if not x5c:
            raise Problem("badAttestationStatement", "x5c not present")
        leaf, intermediate = (x509.load_der_x509_certificate(der) for der in x5c)
        try:
            intermediate.verify_directly_issued_by(self.config.trusted_root)
            leaf.verify_directly_issued_by(intermediate)
        except (ValueError, TypeError, InvalidSignature):
            raise Problem("badAttestationStatement", "x5c is not valid") from None
        freshness = _ext(leaf, FRESHNESS)
        if freshness is None:
            raise Problem("badAttestationStatement", "freshness code missing")
        if freshness != hashlib.sha256(authz.token.encode()).digest():
            raise Problem("badAttestationStatement", "challenge token does not match")
        identifier = authz.order.identifier.encode()
        if identifier not in (_ext(leaf, SERIAL), _ext(leaf, UDID)):
            ident = {"type": "permanent-identifier", "value": authz.order.identifier}
            raise Problem(
                "badAttestationStatement",
                "permanent identifier does not match",
                subproblems=[
                    {
                        "type": PREFIX + "rejectedIdentifier",
                        "detail": "mismatch",
                        "identifier": ident,
                    }
                ],
            )
        return _spki(leaf.public_key())

    def _advance_order(self, order: _Order) -> None:
        if order.status == "processing" and time.monotonic() >= order.ready_at:
            self._issue(order)

    def _issue(self, order: _Order) -> None:
        assert order.csr is not None
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(order.csr.subject)
            .issuer_name(self.ca_cert.subject)
            .public_key(order.csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(hours=1))
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.OtherName(
                            PERMANENT_IDENTIFIER, encode_permanent_identifier(order.identifier)
                        )
                    ]
                ),
                critical=False,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(self.ca_key, hashes.SHA256())
        )
        order.cert_pem = (
            cert.public_bytes(serialization.Encoding.PEM)
            + self.ca_cert.public_bytes(serialization.Encoding.PEM)
        ).decode()
        order.status = "valid"

    async def finalize(self, request: web.Request) -> web.Response:
        payload, account = await self._verify(request)
        order = self.orders[request.match_info["id"]]
        if order.account != account:
            raise Problem("unauthorized", "not your order", 403)
        if order.status != "ready":
            raise Problem("orderNotReady", f"order is {order.status}", 403)
        csr = x509.load_der_x509_csr(_b64d(payload["csr"]))
        if not csr.is_signature_valid:
            raise Problem("badCSR", "CSR signature invalid")
        if _spki(csr.public_key()) != order.attested_spki:
            raise Problem("badCSR", "CSR public key does not match the attested key")
        order.csr = csr
        if self.config.finalize_delay is None:
            self._issue(order)
        else:
            order.status = "processing"
            order.ready_at = time.monotonic() + self.config.finalize_delay
        headers = {"Location": self._url(request, f"/order/{order.id}")}
        if order.status == "processing":
            headers["Retry-After"] = str(self.config.retry_after)
        return self._json(self._order_json(request, order), headers=headers)

    async def order(self, request: web.Request) -> web.Response:
        await self._verify(request)
        order = self.orders[request.match_info["id"]]
        self.polls.append(("order", time.monotonic()))
        body = self._order_json(request, order)
        headers = (
            {"Retry-After": str(self.config.retry_after)} if order.status == "processing" else {}
        )
        return self._json(body, headers=headers)

    async def certificate(self, request: web.Request) -> web.Response:
        await self._verify(request)
        order = self.orders[request.match_info["id"]]
        assert order.cert_pem is not None
        return web.Response(body=order.cert_pem, content_type="application/pem-certificate-chain")
