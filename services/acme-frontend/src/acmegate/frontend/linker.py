"""Every URL the frontend writes or accepts, built in one place (STYLE.md §3).

RFC 8555 §6.4: the JWS ``url`` must equal the URL the request was sent to, so the request URL
is reconstructed from the configured external base URL, never from client-supplied Host or
forwarding headers.
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "/acme"


class Paths:
    """Route patterns (aiohttp syntax) of the ACME resources."""

    DIRECTORY = f"{PREFIX}/directory"
    NEW_NONCE = f"{PREFIX}/new-nonce"
    NEW_ACCOUNT = f"{PREFIX}/new-account"
    NEW_ORDER = f"{PREFIX}/new-order"
    REVOKE_CERT = f"{PREFIX}/revoke-cert"
    KEY_CHANGE = f"{PREFIX}/key-change"
    ACCOUNT = f"{PREFIX}/acct/{{id}}"
    ACCOUNT_ORDERS = f"{PREFIX}/acct/{{id}}/orders"
    ORDER = f"{PREFIX}/order/{{id}}"
    FINALIZE = f"{PREFIX}/order/{{id}}/finalize"
    AUTHZ = f"{PREFIX}/authz/{{id}}"
    CHALLENGE = f"{PREFIX}/chall/{{id}}"
    CERTIFICATE = f"{PREFIX}/cert/{{id}}"


@dataclass(frozen=True)
class Linker:
    base_url: str  # scheme://host[:port], no trailing slash

    def url(self, path: str) -> str:
        return self.base_url + path

    @property
    def directory(self) -> str:
        return self.url(Paths.DIRECTORY)

    @property
    def new_nonce(self) -> str:
        return self.url(Paths.NEW_NONCE)

    @property
    def new_account(self) -> str:
        return self.url(Paths.NEW_ACCOUNT)

    @property
    def new_order(self) -> str:
        return self.url(Paths.NEW_ORDER)

    @property
    def revoke_cert(self) -> str:
        return self.url(Paths.REVOKE_CERT)

    @property
    def key_change(self) -> str:
        return self.url(Paths.KEY_CHANGE)

    def account(self, account_id: str) -> str:
        return self.url(f"{PREFIX}/acct/{account_id}")

    def account_orders(self, account_id: str) -> str:
        return self.url(f"{PREFIX}/acct/{account_id}/orders")

    def order(self, order_id: str) -> str:
        return self.url(f"{PREFIX}/order/{order_id}")

    def finalize(self, order_id: str) -> str:
        return self.url(f"{PREFIX}/order/{order_id}/finalize")

    def authz(self, authz_id: str) -> str:
        return self.url(f"{PREFIX}/authz/{authz_id}")

    def challenge(self, challenge_id: str) -> str:
        return self.url(f"{PREFIX}/chall/{challenge_id}")

    def certificate(self, certificate_id: str) -> str:
        return self.url(f"{PREFIX}/cert/{certificate_id}")

    def account_id_from_kid(self, kid: str) -> str | None:
        """The account id of a ``kid`` URL this server issued, or None."""
        prefix = self.url(f"{PREFIX}/acct/")
        if not kid.startswith(prefix):
            return None
        account_id = kid[len(prefix) :]
        return account_id if account_id and "/" not in account_id else None
