"""The small face every product beyond images shows the server: start, stop, routes, health.

`app.Server` holds a list of products and treats them alike, so a new
product is one line there rather than a new attribute and three new calls.
Routes are matched in list order: a product mounted at `/` goes last.
"""

from __future__ import annotations

from typing import Any, Protocol

# A path regex (or a tornado.routing.Matcher of its own), the handler, its arguments.
Route = tuple[Any, Any, dict[str, Any]]


class Product(Protocol):
    name: str  # its key in `/health`

    async def start(self) -> None:
        """Called inside the running loop, after the worker pools are ready."""

    async def stop(self) -> None:
        """Release what `start` took; called in reverse order of the list."""

    def routes(self) -> list[Route]: ...

    def health(self) -> dict[str, Any]:
        """A JSON-able part of `/health`; it never makes the server unhealthy by itself."""
