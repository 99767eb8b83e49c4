"""Without an `admin_token` there is no admin API at all."""

from __future__ import annotations

import pytest
from tornado.httpclient import AsyncHTTPClient

from iiif_server.config import ConfigError, from_mapping


@pytest.mark.gen_test(timeout=30)
async def test_no_token_no_admin_api(http_client: AsyncHTTPClient, base_url: str) -> None:
    response = await http_client.fetch(
        f"{base_url}/admin/purge?all=true",
        method="POST",
        body=b"",
        headers={"Authorization": "Bearer whatever-it-may-be-it-is-not-here"},
        raise_error=False,
    )
    assert response.code == 404


@pytest.mark.parametrize("token", ["short", 12345678901234567890123456, ""])
def test_a_token_must_be_long_enough(token: object) -> None:
    with pytest.raises(ConfigError, match="admin_token"):
        from_mapping({"admin_token": token})


def test_the_purge_command_needs_a_target_and_a_token(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from iiif_server.cli import main

    monkeypatch.delenv("IIIF_SERVER_ADMIN_TOKEN", raising=False)
    assert main(["purge", "--all"]) == 2
    assert "admin_token" in capsys.readouterr().err
    monkeypatch.setenv("IIIF_SERVER_ADMIN_TOKEN", "x" * 30)
    assert main(["purge"]) == 2
    assert main(["purge", "a", "--all"]) == 2
    monkeypatch.setenv("IIIF_SERVER_HTTP_PORT", "1")  # nothing listens there
    assert main(["purge", "--all"]) == 1
    assert "cannot reach" in capsys.readouterr().err


def test_metrics_behind_a_token_need_a_token_and_log_formats_are_two() -> None:
    with pytest.raises(ConfigError, match="metrics_need_token"):
        from_mapping({"metrics_need_token": True})
    with pytest.raises(ConfigError, match="log_format"):
        from_mapping({"log_format": "xml"})
    assert from_mapping({"log_format": "json"}).log_format == "json"
