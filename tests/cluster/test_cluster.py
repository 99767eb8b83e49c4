"""The shipped multi-node setup (docker/cluster/) on loopback: nginx, three nodes, Redis,
SeaweedFS, started once for the module (tests/cluster/topology.py)."""

from __future__ import annotations

import io
import json
import signal
import threading
import urllib.request
from collections.abc import Iterator

import pytest
from PIL import Image

from tests.cluster.topology import ADMIN_TOKEN, Cluster, cluster, get
from tests.s3store import BUCKET


def jpeg(seed: int, size: tuple[int, int] = (1200, 900)) -> bytes:
    image = Image.radial_gradient("L").resize(size).convert("RGB")
    image = Image.merge(
        "RGB", [band.point(lambda v, s=seed: (v * (s + 2)) % 256) for band in image.split()]
    )
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    workdir = tmp_path_factory.mktemp("cluster")
    sources = workdir / "sources"
    (sources / "sample").mkdir(parents=True)
    for n in range(40):
        (sources / "sample" / f"img{n}.jpg").write_bytes(jpeg(n))
    with cluster(workdir, sources) as running:
        running.store.client().put_object(Bucket=BUCKET, Key="museum/object.jpg", Body=jpeg(99))
        yield running


def tile(identifier: str, region: str = "0,0,512,512", size: str = "256,") -> str:
    return f"/iiif/3/{identifier}/{region}/{size}/0/default.jpg"


def purge(url: str, identifier: str) -> dict:  # type: ignore[type-arg]
    request = urllib.request.Request(
        url + "/admin/purge",
        data=json.dumps({"identifiers": [identifier]}).encode(),
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def test_the_same_request_through_any_node_gives_the_same_bytes(nodes: Cluster) -> None:
    path = tile("img0.jpg")
    answers = [node.get(path) for node in nodes.nodes] + [get(nodes.url + path)]
    assert {status for status, _, _ in answers} == {200}
    assert len({body for _, _, body in answers}) == 1
    infos = [json.loads(node.get("/iiif/3/museum:object.jpg/info.json")[2]) for node in nodes.nodes]
    assert {(info["width"], info["height"]) for info in infos} == {(1200, 900)}


def test_a_sessions_tiles_land_on_one_node(nodes: Cluster) -> None:
    for n in (1, 2, 3):
        identifier = f"img{n}.jpg"
        answered = {get(nodes.url + f"/iiif/3/{identifier}/info.json")[1]["X-Upstream"]}
        for x in (0, 512):
            for y in range(0, 900, 512):
                status, headers, _ = get(nodes.url + tile(identifier, f"{x},{y},512,512"))
                assert status == 200
                answered.add(headers["X-Upstream"])
        assert len(answered) == 1


def test_a_derivative_rendered_on_one_node_is_served_by_another_without_a_render(
    nodes: Cluster,
) -> None:
    first, second = nodes.nodes[0], nodes.nodes[1]
    path = tile("img4.jpg", "100,100,300,300", "150,")
    status, _, made = first.get(path)
    assert status == 200
    _wait_for_shared_writes(nodes, first)
    renders = nodes.renders(second)
    hits = nodes.health(second)["shared"]["derivatives"]["hits"]
    _wait_for_disk_writes(nodes, second)  # earlier tests' tiles land first
    on_disk = nodes.health(second)["derivative_cache"]["entries"]
    status, _, shared = second.get(path)
    assert (status, shared) == (200, made)
    assert nodes.renders(second) == renders
    assert nodes.health(second)["shared"]["derivatives"]["hits"] == hits + 1
    # And its info came from Redis: the second node did not probe the image.
    assert nodes.health(second)["shared"]["redis"]["infos"]["hits"] >= 1
    # What it fetched is its own now: on its disk, and asked again not fetched again.
    for _ in range(500):
        if nodes.health(second)["derivative_cache"]["entries"] == on_disk + 1:
            break
        threading.Event().wait(0.01)
    assert nodes.health(second)["derivative_cache"]["entries"] == on_disk + 1
    assert second.get(path)[2] == made
    assert nodes.health(second)["shared"]["derivatives"]["hits"] == hits + 1


def test_a_derivative_of_an_object_in_the_store_is_shared_too(nodes: Cluster) -> None:
    # Each node downloads the object at its own time: shared by its ETag, not its mtime.
    first, second = nodes.nodes[0], nodes.nodes[2]
    path = tile("museum:object.jpg", "0,0,400,400", "100,")
    status, _, made = first.get(path)
    assert status == 200
    _wait_for_shared_writes(nodes, first)
    renders = nodes.renders(second)
    assert second.get(path)[2] == made
    assert nodes.renders(second) == renders


def _wait_for_disk_writes(nodes: Cluster, node: object) -> None:
    for _ in range(200):
        if nodes.health(node)["derivative_cache"]["writes_pending"] == 0:  # type: ignore[arg-type]
            return
        threading.Event().wait(0.02)
    raise AssertionError("the derivative files were not written")


def _wait_for_shared_writes(nodes: Cluster, node: object) -> None:
    for _ in range(200):
        health = nodes.health(node)  # type: ignore[arg-type]
        if health["shared"]["derivatives"]["writes_in_flight"] == 0:
            return
        threading.Event().wait(0.02)
    raise AssertionError("the shared writes did not finish")


def test_a_purge_through_one_node_reaches_all(nodes: Cluster) -> None:
    path = tile("img5.jpg")
    for node in nodes.nodes:
        assert node.get(path)[0] == 200
    for node in nodes.nodes:
        _wait_for_shared_writes(nodes, node)
    assert any("/" in key for key in nodes.shared_keys())
    before = [nodes.health(node)["purge"]["followed"] for node in nodes.nodes]
    answer = purge(nodes.url, "img5.jpg")
    assert answer["shared_derivatives"] >= 1
    assert answer["processes_listening"] == 3  # every front of every node, this one too
    # The other two nodes applied it; the one that received it did so itself.
    for _ in range(200):
        after = [nodes.health(node)["purge"]["followed"] for node in nodes.nodes]
        if sum(a > b for a, b in zip(after, before, strict=True)) == 2:
            break
        threading.Event().wait(0.02)
    assert sum(a > b for a, b in zip(after, before, strict=True)) == 2
    # Nowhere cached any more: the first node to be asked renders it again, and
    # shares it; the others find it in the shared tier, not in their own caches.
    renders = sum(nodes.renders(node) for node in nodes.nodes)
    hits = sum(nodes.health(node)["shared"]["derivatives"]["hits"] for node in nodes.nodes)
    for node in nodes.nodes:
        assert node.get(path)[0] == 200
        _wait_for_shared_writes(nodes, node)
    assert sum(nodes.renders(node) for node in nodes.nodes) == renders + 1
    shared_hits = [nodes.health(node)["shared"]["derivatives"]["hits"] for node in nodes.nodes]
    assert sum(shared_hits) == hits + 2


def test_without_redis_and_the_store_nodes_serve_what_they_can(nodes: Cluster) -> None:
    cached = tile("img0.jpg")
    nodes.redis.send_signal(signal.SIGTERM)
    nodes.redis.wait(timeout=10)
    nodes.store.process.send_signal(signal.SIGKILL)
    nodes.store.process.wait(timeout=10)
    node = nodes.nodes[2]
    assert node.get(cached)[0] == 200  # its own disk
    status, _, body = node.get(tile("img9.jpg"))  # a new image: probed and rendered here
    assert status == 200
    assert Image.open(io.BytesIO(body)).size == (256, 256)
    status, _, body = node.get("/iiif/3/museum:another.jpg/info.json")
    assert status == 502
    assert b"object store" in body
    health = nodes.health(node)
    assert health["status"] == "ok"
    assert any("shared derivative tier" in w for w in health["warnings"])
    assert any("redis" in w for w in health["warnings"])


def test_killing_a_node_costs_at_most_the_requests_in_flight(nodes: Cluster) -> None:
    paths = [tile(f"img{n}.jpg", f"{x},0,256,256", "64,") for n in range(10, 40) for x in (0, 512)]
    failures: list[int] = []
    done: list[int] = []
    lock = threading.Lock()
    victim = nodes.nodes[2]

    def client(mine: list[str]) -> None:
        for path in mine:
            status = get(nodes.url + path)[0]
            with lock:
                done.append(status)
                if status != 200:
                    failures.append(status)
                if len(done) == 10:
                    victim.process.send_signal(signal.SIGKILL)

    threads = [threading.Thread(target=client, args=(paths[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(done) == len(paths)
    assert victim.process.poll() is not None
    assert len(failures) <= 4  # at most one in flight per client
