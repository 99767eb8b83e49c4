"""`iiif-server covers test ISBN...` and `iiif-server covers save ISBN FILE`, as Cover has them.

Both ask the providers now (a cache in memory only), so they show what the
providers say today whatever the server's cache remembers.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import sys
from pathlib import Path
from typing import Any

from PIL import Image
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from ..errors import ServerError
from .config import CoversSettings
from .providers import USER_AGENT
from .service import CoverService
from .store import MemoryStore

DOWNLOAD_TIMEOUT = 60.0
MAX_IMAGE_BYTES = 50 * 10**6


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add `covers test` and `covers save` to the CLI's subcommands."""
    covers = commands.add_parser("covers", help="book covers: test, save")
    actions = covers.add_subparsers(dest="covers_command", required=True)
    test = actions.add_parser(
        "test", parents=[common], help="print the JSON /cover would return for these ids"
    )
    test.add_argument("ids", nargs="+", metavar="ISBN")
    test.add_argument("--provider", help="providers in order, comma-separated")
    test.add_argument("--all", action="store_true", help="every provider's URL")
    save = actions.add_parser(
        "save", parents=[common], help="download a cover to FILE (never overwrites)"
    )
    save.add_argument("id", metavar="ISBN")
    save.add_argument("file", type=Path, metavar="FILE")
    save.add_argument("--provider", help="providers in order, comma-separated")


def run(args: argparse.Namespace, settings: CoversSettings) -> int:
    try:
        if args.covers_command == "test":
            answer = asyncio.run(_test(settings, args.ids, args.provider, args.all))
            print(json.dumps(answer, separators=(",", ":")))
            return 0
        if args.file.exists():
            print(f"iiif-server: {args.file} exists; refusing to overwrite it", file=sys.stderr)
            return 1
        message = asyncio.run(_save(settings, args.id, args.file, args.provider))
    except (ServerError, SaveFailed) as error:
        print(f"iiif-server: {error}", file=sys.stderr)
        return 1
    print(message)
    return 0


class SaveFailed(Exception):
    pass


def _service(settings: CoversSettings) -> CoverService:
    return CoverService(settings, MemoryStore(max(1, settings.max_ids * len(settings.providers))))


async def _test(
    settings: CoversSettings, ids: list[str], provider_text: str | None, all_: bool
) -> dict[str, Any]:
    service = _service(settings)
    await service.start()
    try:
        wanted = service.parse_ids(",".join(ids))
        return await service.covers(wanted, service.parse_providers(provider_text), all_=all_)
    finally:
        await service.close()


async def _save(
    settings: CoversSettings, identifier: str, path: Path, provider_text: str | None
) -> str:
    service = _service(settings)
    await service.start()
    try:
        providers = service.parse_providers(provider_text)
        answer = await service.covers([identifier], providers, all_=True)
    finally:
        await service.close()
    urls: dict[str, str] = answer.get(identifier, {})
    if not urls:
        raise SaveFailed(f"no cover found for {identifier} ({', '.join(providers)})")
    client = AsyncHTTPClient(force_instance=True, max_body_size=MAX_IMAGE_BYTES)
    try:
        failures = []
        for provider, url in urls.items():
            problem = await _download(client, url, path)
            if problem is None:
                return f"saved the {provider} cover of {identifier} to {path} ({url})"
            failures.append(f"{provider}: {problem}")
        raise SaveFailed(f"no cover could be saved for {identifier}: {'; '.join(failures)}")
    finally:
        client.close()


async def _download(client: AsyncHTTPClient, url: str, path: Path) -> str | None:
    """Save the image at `url` to `path`; the reason when it could not."""
    request = HTTPRequest(
        url,
        headers={"User-Agent": USER_AGENT},
        connect_timeout=DOWNLOAD_TIMEOUT,
        request_timeout=DOWNLOAD_TIMEOUT,
    )
    response = await client.fetch(request, raise_error=False)
    if response.code != 200:
        return f"HTTP {response.code}"
    try:
        with Image.open(io.BytesIO(response.body)) as image:
            # Koha drops 1x1 images too: they are placeholders, not covers.
            if image.width <= 1 and image.height <= 1:
                return "a 1x1 placeholder"
    except (OSError, ValueError, Image.DecompressionBombError):
        return "not an image"
    try:
        with path.open("xb") as output:  # "x": never overwrite, even in a race
            try:
                output.write(response.body)
            except OSError:
                path.unlink(missing_ok=True)
                raise
    except FileExistsError:
        raise SaveFailed(f"{path} exists; refusing to overwrite it") from None
    except OSError as error:
        raise SaveFailed(f"cannot write {path}: {error.strerror}") from None
    return None
