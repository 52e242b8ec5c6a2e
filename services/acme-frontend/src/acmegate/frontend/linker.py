"""Every URL the frontend routes, writes or accepts, each path defined once (one ``Linker``,
as step-ca's ``acme/linker.go`` has).

RFC 8555 §6.4: the JWS ``url`` must equal the URL the request was sent to, so the request URL
is reconstructed from the configured external base URL, never from client-supplied Host or
forwarding headers.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

PREFIX = "/acme"
_ID_NAME = "id"
_ID = "{" + _ID_NAME + "}"


def resource_id(request: web.Request) -> str:
    """The ``{id}`` of the route ``request`` matched."""
    return request.match_info[_ID_NAME]


@dataclass(frozen=True, slots=True)
class Route:
    """One resource path: its aiohttp route pattern, and for a resource with an ``{id}`` the
    path of one of them."""

    pattern: str

    def path(self, resource_id: str) -> str:
        """The path of the resource ``resource_id`` (the pattern with its ``{id}`` filled)."""
        return self.pattern.replace(_ID, resource_id)

    def id_in(self, path: str) -> str | None:
        """The id ``path`` names if it is this route's path, else None (an id is one non-empty
        path segment)."""
        head, _, tail = self.pattern.partition(_ID)
        if len(path) <= len(head) + len(tail) or not path.startswith(head):
            return None
        if not path.endswith(tail):
            return None
        resource_id = path[len(head) : len(path) - len(tail)]
        return resource_id if "/" not in resource_id else None


class Paths:
    """The routes of the ACME resources (RFC 8555 §7.1)."""

    DIRECTORY = Route(f"{PREFIX}/directory")
    # The directory for server-certificate clients: the same resources, but its newAccount
    # requires an EAB when acme.external_account_required (RFC 8555 §7.3.4; step-ca likewise
    # gives each provisioner its own directory). Devices keep the open one.
    SERVER_DIRECTORY = Route(f"{PREFIX}/server/directory")
    SERVER_NEW_ACCOUNT = Route(f"{PREFIX}/server/new-account")
    # RFC 9773 §4.1: GET <renewalInfo>/<certID>.
    RENEWAL_INFO = Route(f"{PREFIX}/renewal-info/{_ID}")
    NEW_NONCE = Route(f"{PREFIX}/new-nonce")
    NEW_ACCOUNT = Route(f"{PREFIX}/new-account")
    NEW_ORDER = Route(f"{PREFIX}/new-order")
    REVOKE_CERT = Route(f"{PREFIX}/revoke-cert")
    KEY_CHANGE = Route(f"{PREFIX}/key-change")
    ACCOUNT = Route(f"{PREFIX}/acct/{_ID}")
    ACCOUNT_ORDERS = Route(f"{PREFIX}/acct/{_ID}/orders")
    ORDER = Route(f"{PREFIX}/order/{_ID}")
    FINALIZE = Route(f"{PREFIX}/order/{_ID}/finalize")
    AUTHZ = Route(f"{PREFIX}/authz/{_ID}")
    CHALLENGE = Route(f"{PREFIX}/chall/{_ID}")
    CERTIFICATE = Route(f"{PREFIX}/cert/{_ID}")


@dataclass(frozen=True)
class Linker:
    """Absolute URLs of the resources, under the configured external base URL."""

    base_url: str  # scheme://host[:port], no trailing slash

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` (a path and query as the request line has them)."""
        return self.base_url + path

    @property
    def directory(self) -> str:
        return self.url(Paths.DIRECTORY.pattern)

    @property
    def server_directory(self) -> str:
        return self.url(Paths.SERVER_DIRECTORY.pattern)

    @property
    def server_new_account(self) -> str:
        return self.url(Paths.SERVER_NEW_ACCOUNT.pattern)

    @property
    def renewal_info_base(self) -> str:
        """The directory's ``renewalInfo`` (RFC 9773 §3): certIDs are appended after a '/'."""
        return self.url(Paths.RENEWAL_INFO.pattern.removesuffix("/" + _ID))

    @property
    def new_nonce(self) -> str:
        return self.url(Paths.NEW_NONCE.pattern)

    @property
    def new_account(self) -> str:
        return self.url(Paths.NEW_ACCOUNT.pattern)

    @property
    def new_order(self) -> str:
        return self.url(Paths.NEW_ORDER.pattern)

    @property
    def revoke_cert(self) -> str:
        return self.url(Paths.REVOKE_CERT.pattern)

    @property
    def key_change(self) -> str:
        return self.url(Paths.KEY_CHANGE.pattern)

    def index_of(self, path: str) -> str:
        """The directory a response to ``path`` links as ``rel="index"`` (RFC 8555 §7.1): the
        server directory for its own resources, else the device directory."""
        if path.startswith(Paths.SERVER_DIRECTORY.pattern.removesuffix("directory")):
            return self.server_directory
        return self.directory

    def account(self, account_id: str) -> str:
        return self.url(Paths.ACCOUNT.path(account_id))

    def account_orders(self, account_id: str) -> str:
        return self.url(Paths.ACCOUNT_ORDERS.path(account_id))

    def order(self, order_id: str) -> str:
        return self.url(Paths.ORDER.path(order_id))

    def finalize(self, order_id: str) -> str:
        return self.url(Paths.FINALIZE.path(order_id))

    def authz(self, authz_id: str) -> str:
        return self.url(Paths.AUTHZ.path(authz_id))

    def challenge(self, challenge_id: str) -> str:
        return self.url(Paths.CHALLENGE.path(challenge_id))

    def certificate(self, certificate_id: str) -> str:
        return self.url(Paths.CERTIFICATE.path(certificate_id))

    def account_id_from_kid(self, kid: str) -> str | None:
        """The account id of a ``kid`` URL this server issued (RFC 8555 §6.2), or None."""
        if not kid.startswith(self.base_url):
            return None
        return Paths.ACCOUNT.id_in(kid[len(self.base_url) :])
