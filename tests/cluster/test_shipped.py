"""The files of docker/cluster/ fit together: the node config loads, nginx knows the nodes."""

from __future__ import annotations

import re

import yaml

from iiif_server.config import load
from tests.cluster.topology import NGINX_CONF, REPO

CLUSTER = REPO / "docker" / "cluster"


def test_the_node_config_shares_derivatives_and_infos() -> None:
    settings = load(CLUSTER / "node.yml", {})
    assert settings.shared_cache is not None
    assert settings.shared_cache.bucket == "derivatives"
    assert settings.shared_info == "redis://redis:6379/0"


def test_nginx_hashes_on_the_identifier_over_the_composed_nodes() -> None:
    compose = yaml.safe_load((CLUSTER / "compose.yml").read_text())
    nodes = {name for name in compose["services"] if name.startswith("node")}
    conf = NGINX_CONF.read_text()
    assert "hash $iiif_identifier consistent;" in conf
    assert set(re.findall(r"server (node\d):4040", conf)) == nodes == {"node1", "node2", "node3"}
    port = yaml.safe_load((CLUSTER / "node.yml").read_text())["http_port"]
    assert port == 4040
