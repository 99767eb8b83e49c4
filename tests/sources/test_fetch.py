"""Address checks and the other pieces of the downloader that need no upstream."""

from __future__ import annotations

import pytest

from iiif_server.sources.fetch import (
    PublicAddressResolver,
    RefusedAddress,
    is_public_address,
    redact,
    same_host,
)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "127.3.2.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
        "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "::", "fe80::1",
        "fc00::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "2002:7f00:1::", "ff02::1",
        "not an address",
    ],
)  # fmt: skip
def test_internal_addresses_are_not_public(address: str) -> None:
    assert not is_public_address(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111"])
def test_public_addresses_are(address: str) -> None:
    assert is_public_address(address)


@pytest.mark.gen_test(timeout=10)
async def test_the_resolver_refuses_names_of_internal_hosts() -> None:
    with pytest.raises(RefusedAddress):
        await PublicAddressResolver().resolve("localhost", 80)
    with pytest.raises(RefusedAddress):
        await PublicAddressResolver().resolve("127.0.0.1", 80)


def test_redacted_urls_keep_no_credentials() -> None:
    shown = redact("https://user:pw@example.org:8443/a/b.jpg?token=t&x=1")
    assert shown == "https://example.org:8443/a/b.jpg?..."
    assert redact("http://[::1]/x") == "http://[::1]/x"


def test_same_host_compares_host_names_only() -> None:
    assert same_host("https://Example.org/a", "http://example.org:8080/b")
    assert not same_host("https://example.org/a", "https://example.org.evil/a")
