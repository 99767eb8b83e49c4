"""SigV4 signing against the worked example of the S3 API reference (GET Object)."""

from __future__ import annotations

from datetime import UTC, datetime

from iiif_server.sources.sigv4 import Credentials, object_path, sign_get

EXAMPLE = Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")


def test_signature_of_the_reference_example() -> None:
    headers = sign_get(
        "https://examplebucket.s3.amazonaws.com/test.txt",
        "us-east-1",
        EXAMPLE,
        {"Range": "bytes=0-9"},
        now=datetime(2013, 5, 24, tzinfo=UTC),
    )
    assert headers["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    )
    assert headers["x-amz-date"] == "20130524T000000Z"


def test_without_credentials_nothing_is_signed() -> None:
    headers = sign_get("http://127.0.0.1:9000/b/k", "us-east-1", None, {"Range": "bytes=0-1"})
    assert "Authorization" not in headers
    assert headers["Range"] == "bytes=0-1"


def test_keys_are_encoded_segment_by_segment() -> None:
    assert object_path("images", "inv/caf\u00e9 1+2.jpg") == "/images/inv/caf%C3%A9%201%2B2.jpg"
