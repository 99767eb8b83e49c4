"""Provider answers parsed as data: Google's JavaScript, Open Library's JSON, Amazon's 1x1."""

from __future__ import annotations

import pytest
from tornado.httpclient import AsyncHTTPClient

from iiif_server.covers.providers import (
    Amazon,
    GoogleBooks,
    ProviderError,
    gb_cover_url,
    parse_gb,
    parse_ol,
)
from tests.covers.fake_provider import FakeProviders

GB_BODY = (
    b'_GBSBookInfo = {"9780415480635":{"bib_key":"9780415480635",'
    b'"info_url":"https://books.google.com/books?id=8dEfAQAAIAAJ\\u0026source=gbs_ViewAPI",'
    b'"preview_url":"https://books.google.com/books?id=8dEfAQAAIAAJ\\u0026source=gbs_ViewAPI",'
    b'"thumbnail_url":"https://books.google.com/books/content?id=8dEfAQAAIAAJ\\u0026printsec=frontcover'
    b'\\u0026img=1\\u0026zoom=5\\u0026edge=curl\\u0026source=gbs_api","preview":"noview",'
    b'"embeddable":false,"can_download_pdf":false},'
    b'"9782266111560":{"bib_key":"9782266111560","info_url":"https://books.google.com/x",'
    b'"preview":"noview"}};'
)


def test_google_answer_is_parsed_and_rewritten_like_coce() -> None:
    found = parse_gb(GB_BODY, ["9780415480635", "9782266111560", "9791090636071"])
    assert found == {
        "9780415480635": "https://books.google.com/books/content?id=8dEfAQAAIAAJ"
        "&printsec=frontcover&img=1&zoom=1&source=gbs_api",
        "9782266111560": None,  # known to Google, but no thumbnail
        "9791090636071": None,  # absent: no cover
    }


def test_google_var_form_and_literal_escapes() -> None:
    body = b'var _GBSBookInfo = {"1": {"thumbnail_url": "http://x.org/c?a=1\\\\u0026zoom=5"}}'
    assert parse_gb(body, ["1"]) == {"1": "http://x.org/c?a=1&zoom=1"}
    assert gb_cover_url("http://x.org/c?id=1&zoom=5&edge=curl") == "http://x.org/c?id=1&zoom=1"


@pytest.mark.parametrize(
    "body",
    [
        b"<html>unusual traffic</html>",
        b'_GBSBookInfo = (function(){ fetch("http://evil/"); return {}; })();',
        b"_GBSBookInfo = [1, 2];",
        b"",
    ],
)
def test_anything_else_from_google_is_a_failure_never_code(body: bytes) -> None:
    with pytest.raises(ProviderError):
        parse_gb(body, ["9780415480635"])


def test_hostile_urls_are_not_covers() -> None:
    body = b'_GBSBookInfo = {"1": {"thumbnail_url": "javascript:alert(1)"}, "2": {"thumbnail_url": "https://a.org/\\"><script>"}};'
    assert parse_gb(body, ["1", "2"]) == {"1": None, "2": None}


def test_open_library_answer_picks_the_configured_size() -> None:
    body = (
        b'{"ISBN:9780415480635": {"url": "https://openlibrary.org/books/OL1M/x", "cover": '
        b'{"small": "https://covers.openlibrary.org/b/id/2520432-S.jpg",'
        b' "medium": "https://covers.openlibrary.org/b/id/2520432-M.jpg",'
        b' "large": "https://covers.openlibrary.org/b/id/2520432-L.jpg"}},'
        b' "ISBN:9782266111560": {"url": "https://openlibrary.org/books/OL2M/y"}}'
    )
    keys = ["9780415480635", "9782266111560", "9791090636071"]
    assert parse_ol(body, keys, "large") == {
        "9780415480635": "https://covers.openlibrary.org/b/id/2520432-L.jpg",
        "9782266111560": None,  # a record without a cover
        "9791090636071": None,  # no record
    }
    with pytest.raises(ProviderError):
        parse_ol(b"[]", keys, "medium")
    with pytest.raises(ProviderError):
        parse_ol(b"{not json", keys, "medium")


@pytest.mark.gen_test(timeout=10)
async def test_amazon_head_tells_covers_from_the_1x1_placeholder(fake: FakeProviders) -> None:
    fake.aws.add("0415480639")
    settings = fake.settings()
    client = AsyncHTTPClient(force_instance=True)
    try:
        amazon = Amazon("aws", settings.aws, client, 2.0)
        assert await amazon.lookup(["9780415480635"]) == {
            "9780415480635": f"{fake.url}/aws/images/P/0415480639.01.MZZZZZZZZZ.jpg"
        }
        assert await amazon.lookup(["9782266111560"]) == {"9782266111560": None}
        assert await amazon.lookup(["9791090636071"]) == {"9791090636071": None}  # no ISBN-10
        assert len(fake.asked("aws")) == 2  # the 979 was never asked
        fake.mode["aws"] = "fail"
        with pytest.raises(ProviderError):
            await amazon.lookup(["9780415480635"])
    finally:
        client.close()


@pytest.mark.gen_test(timeout=10)
async def test_google_is_asked_once_for_a_batch(fake: FakeProviders) -> None:
    fake.gb["9780415480635"] = "vol1"
    client = AsyncHTTPClient(force_instance=True)
    try:
        google = GoogleBooks("gb", fake.settings().gb, client, 2.0)
        found = await google.lookup(["9780415480635", "9782266111560"])
    finally:
        client.close()
    assert found == {
        "9780415480635": fake.gb_cover("vol1"),
        "9782266111560": None,
    }
    assert fake.asked("gb") == ["/gb/books?bibkeys=9780415480635,9782266111560&jscmd=viewapi&hl=en"]
