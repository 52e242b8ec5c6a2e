"""Every URL from one place: the router's patterns and the links the frontend writes are the
same definitions, and a ``kid`` is accepted only as an account URL this server issued."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from acmegate.common.config import Config
from acmegate.frontend.app import create_app
from acmegate.frontend.linker import Linker, Paths, Route

BASE = "https://acme.example.com:8443"
LINKER = Linker(BASE)


def test_directory_urls_are_under_the_external_base() -> None:
    assert LINKER.directory == f"{BASE}/acme/directory"
    assert LINKER.new_nonce == f"{BASE}/acme/new-nonce"
    assert LINKER.new_account == f"{BASE}/acme/new-account"
    assert LINKER.new_order == f"{BASE}/acme/new-order"
    assert LINKER.revoke_cert == f"{BASE}/acme/revoke-cert"
    assert LINKER.key_change == f"{BASE}/acme/key-change"


def test_resource_urls_carry_their_id() -> None:
    assert LINKER.account("a1") == f"{BASE}/acme/acct/a1"
    assert LINKER.account_orders("a1") == f"{BASE}/acme/acct/a1/orders"
    assert LINKER.order("o1") == f"{BASE}/acme/order/o1"
    assert LINKER.finalize("o1") == f"{BASE}/acme/order/o1/finalize"
    assert LINKER.authz("z1") == f"{BASE}/acme/authz/z1"
    assert LINKER.challenge("c1") == f"{BASE}/acme/chall/c1"
    assert LINKER.certificate("x1") == f"{BASE}/acme/cert/x1"
    # RFC 8555 §6.4: the JWS url is compared with the request's path and query on this base.
    assert LINKER.url("/acme/acct/a1/orders?before=7") == f"{BASE}/acme/acct/a1/orders?before=7"


@pytest.mark.parametrize(
    ("kid", "account_id"),
    [
        (f"{BASE}/acme/acct/a1", "a1"),
        (f"{BASE}/acme/acct/", None),  # no id
        (f"{BASE}/acme/acct/a1/orders", None),  # another resource of the account
        (f"{BASE}/acme/order/a1", None),
        ("https://evil.example/acme/acct/a1", None),  # another server's account
        ("http://acme.example.com:8443/acme/acct/a1", None),  # another scheme
        ("/acme/acct/a1", None),  # not absolute
        ("", None),
    ],
)
def test_a_kid_names_an_account_only_if_this_server_issued_it(
    kid: str, account_id: str | None
) -> None:
    assert LINKER.account_id_from_kid(kid) == account_id


def test_a_route_reads_back_the_id_it_wrote() -> None:
    for route in (Paths.ACCOUNT, Paths.ACCOUNT_ORDERS, Paths.ORDER, Paths.FINALIZE):
        assert route.id_in(route.path("abc")) == "abc"
        assert route.id_in(route.path("")) is None
        assert route.id_in(route.path("a/b")) is None
    assert Paths.ORDER.id_in(Paths.FINALIZE.path("abc")) is None
    assert Route("/static").id_in("/static") is None


def test_the_router_serves_exactly_the_linked_paths() -> None:
    frontend = SimpleNamespace(config=Config())
    app = create_app(frontend)  # type: ignore[arg-type]
    routed = {resource.canonical for resource in app.router.resources()}
    defined = {route.pattern for name, route in vars(Paths).items() if isinstance(route, Route)}
    assert routed == defined
    # The router builds the same path for an id as the links the frontend writes.
    by_pattern = {resource.canonical: resource for resource in app.router.resources()}
    for route in (Paths.ACCOUNT, Paths.ACCOUNT_ORDERS, Paths.ORDER, Paths.CHALLENGE):
        assert by_pattern[route.pattern].url_for(id="xyz").path == route.path("xyz")
