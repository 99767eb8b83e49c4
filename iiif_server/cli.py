"""Command line: `iiif-server serve | check-config | info | warm | covers | purge | lookup`."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from . import __version__, event_loop
from .cache import DerivativeCache
from .config import ConfigError, Settings, load
from .covers import commands as cover_commands
from .errors import ServerError
from .iiif.info import info_v3
from .lookup import commands as lookup_commands
from .purge import command as purge_command
from .service import ImageService, InProcessRunner

logger = logging.getLogger("iiif_server")


def _settings(args: argparse.Namespace) -> Settings:
    return load(args.config, os.environ)


def configure_logging(level: str, log_format: str = "text") -> None:
    from .logs import configure_logging as configure

    configure(level, log_format)


async def serve(
    settings: Settings,
    ready: asyncio.Event | None = None,
    *,
    reuse_port: bool = False,
    pools: socket.socket | None = None,
) -> None:
    """Run until SIGTERM or SIGINT: then stop accepting, finish in-flight requests, stop pools.

    `pools`: a front of several, which uses the supervisor's pools through this socket.
    """
    from tornado.httpserver import HTTPServer

    from .app import Server

    server = Server(settings, pools)
    await server.start()
    app = server.make_app()
    http_server = HTTPServer(app)
    http_server.listen(settings.http_port, settings.host, reuse_port=reuse_port)
    logger.info(
        "iiif-server %s listening on http://%s:%d/iiif/3/ and /iiif/2/",
        __version__,
        settings.host,
        settings.http_port,
    )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    if ready is not None:
        ready.set()
    try:
        await stopping.wait()
        logger.info("stopping: no new connections, finishing requests in flight")
        http_server.stop()
        await app.wait_idle(timeout=settings.image_task_timeout)
        await http_server.close_all_connections()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await server.stop()
        logger.info("stopped")


async def _info(settings: Settings, identifier: str) -> dict[str, object]:
    """info.json computed in this process, without pools or a server."""
    runner = InProcessRunner()
    service = ImageService(settings, runner, runner, DerivativeCache(Path(os.devnull), 0))
    image = await service.resolve(identifier)
    root = settings.base_url or f"http://{settings.host}:{settings.http_port}"
    image_id = f"{root}/iiif/3/{quote(identifier, safe='')}"
    return info_v3(image_id, image.info, service.info_options(image))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="iiif-server", description=__doc__)
    parser.add_argument("--version", action="version", version=__version__)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, help="YAML configuration file")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", parents=[common], help="run the server (the default)")
    commands.add_parser("check-config", parents=[common], help="validate the configuration")
    info = commands.add_parser("info", parents=[common], help="print an image's info.json")
    info.add_argument("identifier")
    warm_command = commands.add_parser(
        "warm", parents=[common], help="make the advertised tiles and sizes of images in advance"
    )
    warm_command.add_argument("identifiers", nargs="+", metavar="IDENTIFIER")
    cover_commands.add_commands(commands, common)
    lookup_commands.add_commands(commands, common)
    purge_command.add_command(commands, common)
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["serve", *(argv if argv is not None else sys.argv[1:])])
    try:
        settings = _settings(args)
    except ConfigError as error:
        print(f"iiif-server: configuration error: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    for warning in settings.warnings:
        logging.getLogger("iiif_server.config").warning("%s", warning)
    if args.command == "check-config":
        print(f"configuration ok: {len(settings.types)} type(s), port {settings.http_port}")
        return 0
    if args.command == "info":
        try:
            document = asyncio.run(_info(settings, args.identifier))
        except ServerError as error:
            print(f"iiif-server: {error.status}: {error}", file=sys.stderr)
            return 1
        print(json.dumps(document, indent=2))
        return 0
    if args.command == "covers":
        return cover_commands.run(args, settings.covers)
    if args.command == "lookup":
        return lookup_commands.run(args, settings.lookup, settings.cache_path)
    if args.command == "purge":
        return purge_command.run(args, settings)
    if args.command == "warm":
        from .warm import warm

        reports = asyncio.run(warm(settings, args.identifiers))
        for report in reports:
            outcome = report.error or f"{report.made} made, {report.already} already cached"
            print(f"{report.identifier}: {outcome} ({report.seconds:.1f} s)")
        return 1 if any(report.error for report in reports) else 0
    if settings.processes > 1:
        from .supervisor import run

        return run(settings, settings.processes)
    event_loop.run(serve(settings), settings.event_loop)
    return 0
