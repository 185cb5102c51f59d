"""The stores on object storage, for real: a local S3-compatible server (moto) and `s3://bucket/prefix` URIs.

Knowledge (CRUD, search, versions, restore, tags, import/export), visual memory (bank build, inspect, rebuild,
calibrated thresholds), exemplars and annotations run against the server; the commit protocol LanceDB needs
there (conditional puts, or a DynamoDB commit store) is shown by racing two commits for one version.
"""

import re
import threading

import lancedb
import numpy as np
import pytest
from PIL import Image

from knowledge_helpers import SEED, entry, make_store, solid
from reason_iad.annotations import AnnotationStore
from reason_iad.errors import UserError
from reason_iad.exports import export_mmad
from reason_iad.knowledge.search import retrieve, search, search_by_image
from reason_iad.knowledge.transfer import export_domain_knowledge, export_jsonl, import_entries, read_import_file
from reason_iad.mmad import load_mmad

pytest_plugins = ["s3_server"]  # the s3_server and s3_uri fixtures
MANIFEST = re.compile(r"/t\.lance/_versions/([^/]*\.manifest)(-[0-9a-f-]+)?$")  # staged with a suffix (DynamoDB)


def key_prefix(uri: str) -> str:
    return uri.split("/", 3)[3]


def test_s3_knowledge_store_crud_search_versions_tags_restore(s3_server, s3_uri, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = make_store(s3_uri)
    assert store.count() == len(SEED) and [c.action for c in store.changes()] == ["seed"]
    keys = s3_server.keys(key_prefix(s3_uri))
    assert any("/knowledge.lance/_versions/" in k for k in keys) and any("/knowledge_history.lance/" in k for k in keys)
    assert list(tmp_path.iterdir()) == []  # nothing was written to a local "s3:" folder

    v_add = store.add([entry("tile", "chip", "A chipped corner, blue fragments.")], author="ana")
    v_edit = store.update("test/tile/chip", author="bo", text="A missing corner piece.")
    v_del = store.delete(["test/wood/hole"], author="ana")
    assert v_add < v_edit < v_del == store.version
    assert [h.entry.id for h in search(store, "missing corner", "fts")] == ["test/tile/chip"]
    assert search(store, "missing corner piece", "semantic", k=1)[0].entry.id == "test/tile/chip"
    assert search(store, "corner", "hybrid", category="tile")[0].entry.id == "test/tile/chip"
    assert search_by_image(store, solid((200, 10, 10)), k=1, category="wood")[0].entry.defect == "stain"
    assert retrieve(store, solid((10, 10, 200)), category="tile", k=1).version == v_del

    assert "test/wood/hole" not in {s.entry.id for s in store.list()}
    assert "test/wood/hole" in {s.entry.id for s in store.list(version=v_edit)}
    assert store.at_version(v_add).get("test/tile/chip").entry.text.startswith("A chipped")
    restored = store.restore(v_edit, author="cy")
    assert restored == v_del + 1 and store.count() == len(SEED) + 1
    assert store.tag("release-1", v_edit) == v_edit and store.tags() == {"release-1": v_edit}
    with pytest.raises(UserError, match="exists already"):
        store.tag("release-1")

    reopened = make_store(s3_uri)
    assert reopened.version == restored and reopened.count() == store.count()
    assert [(c.author, c.action) for c in reopened.changes()][1:] == [
        ("ana", "add"),
        ("bo", "update"),
        ("ana", "delete"),
        ("cy", "restore"),
    ]


def test_s3_import_and_export_through_the_store_api(s3_uri, tmp_path):
    store = make_store(s3_uri + "/a", seed=[])
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(entry("gear", f"d{i}", f"Defect number {i}.").model_dump_json() for i in range(40)))
    summary = import_entries(store, *read_import_file(source, author="ana"), author="ana")
    assert len(summary.created) == 40 and summary.version == store.version and store.count() == 40
    assert export_jsonl(store, tmp_path / "out.jsonl") == 40
    assert export_domain_knowledge(store, tmp_path / "out.json") == 40
    copy = make_store(s3_uri + "/b", seed=[])
    again = import_entries(copy, *read_import_file(tmp_path / "out.jsonl", author="bo"), author="bo")
    assert len(again.created) == 40
    assert [s.entry for s in copy.list()] == [s.entry for s in store.list()]
    unchanged = import_entries(copy, *read_import_file(tmp_path / "out.json", author="bo"), author="bo")
    assert len(unchanged.unchanged) == 40 and unchanged.version is None


def test_s3_open_store_creates_and_seeds_without_local_folders(s3_uri, tmp_path, monkeypatch):
    from reason_iad.config import KnowledgeConfig
    from reason_iad.knowledge import open_store

    monkeypatch.chdir(tmp_path)
    seed_dir = tmp_path / "seed"
    seed_dir.mkdir()
    (seed_dir / "kb.jsonl").write_text("\n".join(e.model_dump_json() for e in SEED) + "\n")
    config = KnowledgeConfig(db_uri=s3_uri, text_embedder="fake")
    first = open_store(config, seed_dir)
    second = open_store(config, seed_dir)
    assert first.count() == second.count() == len(SEED) and len(second.changes()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seed"]


def test_s3_lancedb_takes_storage_options_or_environment_variables(s3_server, monkeypatch):
    for name in s3_server.env():
        monkeypatch.delenv(name, raising=False)
    uri = f"s3://{s3_server.bucket}/connect-options"
    lancedb.connect(uri, storage_options=s3_server.storage_options()).create_table("t", data=[{"id": 1}])
    for endpoint_variable in ("AWS_ENDPOINT", "AWS_ENDPOINT_URL"):
        with monkeypatch.context() as env:
            for name, value in s3_server.env().items():
                if name.startswith("AWS_ENDPOINT") and name != endpoint_variable:
                    continue
                env.setenv(name, value)
            assert lancedb.connect(uri).open_table("t").count_rows() == 1


def _race_two_commits(s3_server, uri: str) -> list[int]:
    """Two writers commit the same next version at the same moment (held at the manifest PUT); the ids kept."""
    lancedb.connect(uri).create_table("t", data=[{"id": 0}])
    writers = [lancedb.connect(uri).open_table("t") for _ in range(2)]
    barrier, held = threading.Barrier(2, timeout=10), []

    def hold_first_two_manifest_puts(request):
        found = MANIFEST.search(request.path)
        if request.method == "PUT" and found and len(held) < 2:
            held.append(found.group(1))
            barrier.wait()
        return False

    s3_server.on_request = hold_first_two_manifest_puts
    threads = [threading.Thread(target=t.add, args=([{"id": i + 1}],)) for i, t in enumerate(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    s3_server.on_request = None
    assert len(held) == 2 and held[0] == held[1]  # both tried to commit the same version
    return sorted(row["id"] for row in lancedb.connect(uri).open_table("t").to_arrow().to_pylist())


def test_s3_commits_are_conditional_puts_that_the_server_enforces(s3_server, s3_uri):
    s3_server.requests.clear()
    make_store(s3_uri).add([entry("tile", "chip")], author="ana")
    manifests = [r for r in s3_server.requests if r.method == "PUT" and r.path.endswith(".manifest")]
    assert manifests and all(r.if_none_match == "*" for r in manifests)  # put-if-absent: LanceDB's commit
    client = s3_server.client()
    client.put_object(Bucket=s3_server.bucket, Key=f"{key_prefix(s3_uri)}/probe", Body=b"1")
    with pytest.raises(client.exceptions.ClientError, match="PreconditionFailed"):
        client.put_object(Bucket=s3_server.bucket, Key=f"{key_prefix(s3_uri)}/probe", Body=b"2", IfNoneMatch="*")
    assert _race_two_commits(s3_server, s3_uri + "/race") == [0, 1, 2]  # the loser retried as the next version


def test_s3_a_store_without_conditional_puts_loses_a_racing_commit(s3_server, s3_uri):
    """What LanceDB's plain s3:// commit needs: on a server that ignores If-None-Match, one commit vanishes."""
    s3_server.ignore_conditions = True
    kept = _race_two_commits(s3_server, s3_uri)
    assert len(kept) == 2 and kept[0] == 0  # one of the two acknowledged writes is gone, silently


def test_s3_dynamodb_commit_store_keeps_both_racing_commits_without_conditional_puts(s3_server, s3_uri, monkeypatch):
    table = f"lance-commits-{key_prefix(s3_uri)}"
    s3_server.client("dynamodb").create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "base_uri", "KeyType": "HASH"}, {"AttributeName": "version", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "base_uri", "AttributeType": "S"},
            {"AttributeName": "version", "AttributeType": "N"},
        ],
    )
    monkeypatch.setenv("DYNAMODB_ENDPOINT", s3_server.endpoint)
    s3_server.ignore_conditions = True
    uri = s3_uri.replace("s3://", "s3+ddb://") + f"?ddbTableName={table}"
    assert _race_two_commits(s3_server, uri) == [0, 1, 2]  # DynamoDB's conditional write picked one per version
    store = make_store(uri.replace("?", "/kb?"))  # the knowledge base takes such a URI too
    assert store.add([entry("tile", "chip")], author="ana") == store.version and store.count() == len(SEED) + 1


def _texture(seed: int, size: int = 64) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray((120 + 25 * rng.standard_normal((size, size, 3))).clip(0, 255).astype(np.uint8))


def test_s3_visual_memory_builds_inspects_and_rebuilds_with_stored_thresholds(s3_uri):
    from reason_iad.config import MemoryConfig
    from reason_iad.memory.backbone import EfficientNetLiteBackbone
    from reason_iad.memory.detector import VisualMemory

    backbone = EfficientNetLiteBackbone(image_size=64)
    config = MemoryConfig(image_size=64, views_per_exemplar=2, coreset_min_patches=100, coreset_ratio=0.5)
    memory = VisualMemory(s3_uri, config, backbone)
    built = memory.add_exemplars("SynthIAD", "tile", [_texture(0), _texture(1), _texture(2)])
    assert built.num_patches > 0 and built.calibration is not None and built.version == memory.versions()[-1]
    evidence = memory.inspect(_texture(3), "SynthIAD", "tile")
    defect = np.asarray(_texture(4)).copy()
    defect[20:36, 20:36] = 255
    assert memory.inspect(Image.fromarray(defect), "SynthIAD", "tile").raw_score > evidence.raw_score

    reopened = VisualMemory(s3_uri, config, backbone)  # a fresh process would see the same: nothing is cached
    assert reopened.bank_info("SynthIAD", "tile") == built  # thresholds (calibration) come back from the store
    assert reopened.inspect(_texture(3), "SynthIAD", "tile").raw_score == pytest.approx(evidence.raw_score)
    rebuilt = reopened.rebuild("SynthIAD", "tile")
    assert rebuilt.version > built.version and rebuilt.num_patches == built.num_patches
    removed = reopened.remove_exemplars("SynthIAD", "tile", [built.exemplar_ids[0]])
    assert removed.exemplar_ids == built.exemplar_ids[1:] and removed.version > rebuilt.version
    assert memory.bank_info("SynthIAD", "tile") == removed
    assert reopened.store.size_bytes() > 0


def test_s3_annotations_and_exemplars(s3_uri, tmp_path):
    from reason_iad.memory.exemplars import ExemplarStore

    annotations = AnnotationStore(s3_uri)
    mask = np.zeros((48, 64), np.uint8)
    mask[2:10, 2:12] = 255
    annotations.add(Image.new("RGB", (64, 48), (90, 90, 90)), "normal", "Mine", "gear", author="ana")
    chip = annotations.add(
        Image.new("RGB", (64, 48), (200, 9, 9)), "defective", "Mine", "gear", author="bo", defect="chip", mask=mask
    )
    listed = AnnotationStore(s3_uri).list()
    assert [a.label for a in listed] == ["normal", "defective"] and listed[1].mask is not None
    assert export_mmad(listed, tmp_path / "export") == 2 and len(load_mmad(tmp_path / "export" / "mmad.json")) == 2
    annotations.remove(chip)
    assert [a.label for a in AnnotationStore(s3_uri).list()] == ["normal"]

    exemplars = ExemplarStore(s3_uri)
    exemplars.add(solid((200, 10, 10)), "Mine", "gear", author="ana")
    exemplars.add(solid((10, 10, 200)), "Mine", "shaft", author="ana")
    assert ExemplarStore(s3_uri).nearest(solid((190, 20, 20)), None).category == "gear"
