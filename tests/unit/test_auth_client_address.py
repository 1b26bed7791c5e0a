"""Which client a request comes from: the peer, or the client a trusted proxy names in X-Forwarded-For
(REGISTRY_TRUSTED_PROXIES, read from the right like werkzeug's ProxyFix); never a header of anyone else."""

from __future__ import annotations

import ipaddress

import pytest

from app.errors import ConfigurationError
from app.settings import load_settings
from app.web.credentials import forwarded_client

INGRESS = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8"))


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("203.0.113.7", [], "203.0.113.7"),  # nobody in between
        ("203.0.113.7", ["198.51.100.1"], "203.0.113.7"),  # an untrusted peer's header says nothing
        ("10.1.2.3", ["198.51.100.1"], "198.51.100.1"),  # the ingress names its client
        ("10.1.2.3", ["6.6.6.6, 198.51.100.1"], "198.51.100.1"),  # what the client wrote itself is left
        ("10.1.2.3", ["6.6.6.6", "198.51.100.1, 10.9.9.9"], "198.51.100.1"),  # two proxies, two headers
        ("10.1.2.3", ["10.7.7.7, 10.8.8.8"], "10.7.7.7"),  # every hop a proxy: the farthest one
        ("10.1.2.3", [], "10.1.2.3"),  # a proxy that names nobody is the client
        ("10.1.2.3", ["not-an-address"], "10.1.2.3"),  # garbage: the last address a proxy vouched for
        ("10.1.2.3", ["198.51.100.1:5123"], "198.51.100.1"),  # a port (Azure's gateways add one)
        ("10.1.2.3", ["[2001:db8::1]:5123"], "2001:db8::1"),
        ("fd00::5", ["2001:db8::1"], "2001:db8::1"),
        ("::ffff:10.1.2.3", ["198.51.100.1"], "198.51.100.1"),  # IPv4 mapped into IPv6 is IPv4
        ("10.1.2.3", ["::ffff:198.51.100.1"], "198.51.100.1"),  # one key per client, however written
    ],
)
def test_the_client_a_trusted_proxy_names(peer: str, forwarded: list[str], client: str) -> None:
    assert forwarded_client(peer, forwarded, INGRESS) == client


def test_without_trusted_proxies_headers_are_ignored() -> None:
    assert forwarded_client("10.1.2.3", ["198.51.100.1"], ()) == "10.1.2.3"


def test_trusted_proxies_are_validated_once_naming_the_variable() -> None:
    settings = load_settings(environ={"REGISTRY_TRUSTED_PROXIES": "10.0.0.0/8, fd00::/8,192.0.2.10"})
    assert [str(n) for n in settings.trusted_proxies] == ["10.0.0.0/8", "fd00::/8", "192.0.2.10/32"]
    assert load_settings(environ={}).trusted_proxies == ()
    for bad in ("ingress", "10.0.0.1/8", "10.0.0.0/33"):
        with pytest.raises(ConfigurationError, match=f"REGISTRY_TRUSTED_PROXIES: '{bad}' is not a CIDR"):
            load_settings(environ={"REGISTRY_TRUSTED_PROXIES": bad})
