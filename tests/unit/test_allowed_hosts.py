"""Which internal addresses a source may reach (`tasks.collect.fetch.allowed_hosts`), and the
`collection.allow_hosts` key that names more of them."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tasks.collect.fetch import allowed_hosts
from vigie.settings import Collection


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("metadata.example", "169.254.169.254"),  # link-local: the cloud metadata service
        ("intranet.example", "10.1.2.3"),
        ("intranet.example", "192.168.0.10"),
        ("loopback.example", "127.0.0.53"),
        ("mapped.example", "::ffff:127.0.0.1"),
        ("v6.example", "::1"),
        ("v6.example", "fe80::1"),
        ("group.example", "224.0.0.1"),
        ("zero.example", "0.0.0.0"),
        ("reserved.example", "240.0.0.1"),
        ("shared.example", "100.64.0.1"),
    ],
)
def test_internal_addresses_are_refused_unless_named(host: str, address: str) -> None:
    refusal = allowed_hosts("https://presse.example/feed.xml", ()).refusal(host, address)
    assert refusal is not None and "collection.allow_hosts" in refusal


def test_the_web_and_the_hosts_the_operator_named_are_allowed() -> None:
    allowed = allowed_hosts(
        "http://127.0.0.1:8080/feed.xml", ("intranet.example", "10.1.0.0/16", "fd00::5")
    )
    assert allowed.refusal("presse.example", "93.184.216.34") is None
    assert allowed.refusal("127.0.0.1", "127.0.0.1") is None  # the source's own host
    assert allowed.refusal("other.example", "127.0.0.1") is None  # its address, by any name
    assert allowed.refusal("Intranet.Example.", "10.9.9.9") is None  # named: any address
    assert allowed.refusal("wiki.example", "10.1.44.2") is None  # in a named network
    assert allowed.refusal("v6.example", "fd00::5") is None
    assert allowed.refusal("wiki.example", "10.2.0.1") is not None
    assert allowed.refusal("localhost", "127.0.0.2") is not None


def test_allow_hosts_takes_names_addresses_and_networks_only() -> None:
    hosts = ("intranet.example", "10.0.0.5", "10.1.0.0/16", "::1", "feeds")
    assert Collection(allow_hosts=hosts).allow_hosts == hosts
    for wrong in ("http://intranet.example", "intranet.example:8080", "10.0.0.0/33", ""):
        with pytest.raises(ValidationError, match="allow_hosts"):
            Collection(allow_hosts=(wrong,))
