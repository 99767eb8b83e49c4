"""The `web` source: the type's `url` template with the name percent-encoded into `{name}`.

Every character of the name that could mean something in a URL (`/ ? # & = @ :` and
`%`) is encoded, and the names `.` and `..` are refused, so no name can change the
template's host, escape its path prefix or add to its query.

The template's host is the operator's choice and may be internal; a redirect to any
other host is held to `allow_private_addresses` like a `trusted_web` URL.
"""

from __future__ import annotations

from urllib.parse import quote

from ..errors import BadRequest
from .fetch import same_host


class WebLocator:
    def __init__(self, template: str) -> None:
        self._template = template
        # Config validation keeps {name} out of the host, so any filler gives the host.
        self._host_url = template.replace("{name}", "x")

    def url_for(self, name: str) -> str:
        if name in ("", ".", ".."):
            raise BadRequest("not a valid name for this type")
        try:
            encoded = quote(name, safe="", errors="strict")
        except UnicodeEncodeError:
            raise BadRequest("the name is not valid text") from None
        return self._template.replace("{name}", encoded)

    def trusts_host(self, url: str) -> bool:
        return same_host(url, self._host_url)

    def allows_redirect(self, url: str) -> bool:
        return True
