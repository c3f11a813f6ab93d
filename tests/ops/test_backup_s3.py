"""Backups kept in S3-compatible storage, against a real gateway (Ceph RGW on loopback; see tests/s3_server.py)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from sage_platform.config import Settings
from sage_platform.ops.backup import BackupError, apply_retention, backup_now, list_backups, manifest
from sage_platform.ops.restore import restore
from sage_platform.ops.storage import s3_client
from tests.conftest import create_database
from tests.s3_server import S3Endpoint, s3_endpoint, unavailable_reason

pytestmark = pytest.mark.skipif(unavailable_reason() is not None, reason=unavailable_reason() or "")


@pytest.fixture(scope="module")
def endpoint() -> Iterator[S3Endpoint]:
    with s3_endpoint() as found:
        yield found


@pytest.fixture
def bucket(endpoint: S3Endpoint, tmp_path: Path) -> str:
    name = f"sage-test-{uuid.uuid4().hex[:12]}"
    s3_client(endpoint.settings(Settings(data_dir=tmp_path), name)).create_bucket(Bucket=name)
    return name


def keys(settings: Settings) -> list[str]:
    found = s3_client(settings).list_objects_v2(Bucket=settings.s3_bucket)
    return sorted(o["Key"] for o in found.get("Contents", []))


def test_backup_to_s3_then_restore_by_name(platform, endpoint: S3Endpoint, bucket: str, pg_server: str) -> None:  # type: ignore[no-untyped-def]
    settings = endpoint.settings(platform.settings, bucket)
    result = backup_now(settings, platform.db)
    name = result.location.rsplit("/", 1)[-1]
    assert result.verified and result.location == f"s3://{bucket}/sage/backups/{name}"
    assert keys(settings) == [f"sage/backups/{name}", f"sage/backups/{name.removesuffix('.dump')}.json"]
    stored = s3_client(settings).head_object(Bucket=bucket, Key=f"sage/backups/{name}")
    assert stored["ContentLength"] == result.size_bytes
    assert not list(Path(settings.data_dir, "backups").glob("sage-*")), "nothing is left in the staging folder"
    [listed] = list_backups(settings)
    assert listed["location"] == result.location and listed["verified"] and listed["tables"] == len(result.tables)

    target = create_database(pg_server)
    checks = restore(settings, name, target)
    assert checks and all(c["match"] for c in checks)
    with psycopg.connect(platform.db.url) as source, psycopg.connect(target) as copy:
        assert [(t.table, t.rows, t.checksum) for t in manifest(source)] == [
            (t.table, t.rows, t.checksum) for t in manifest(copy)]  # fmt: skip
    with pytest.raises(BackupError, match="not empty"):
        restore(settings, result.location, target)  # the s3:// location works as well as the name


def test_restore_refuses_an_object_that_changed_since_it_verified(platform, endpoint, bucket, pg_server) -> None:  # type: ignore[no-untyped-def]
    settings = endpoint.settings(platform.settings, bucket)
    result = backup_now(settings, platform.db)
    name = result.location.rsplit("/", 1)[-1]
    client = s3_client(settings)
    body = bytearray(client.get_object(Bucket=bucket, Key=f"sage/backups/{name}")["Body"].read())
    body[len(body) // 2] ^= 0xFF
    client.put_object(Bucket=bucket, Key=f"sage/backups/{name}", Body=bytes(body))
    target = create_database(pg_server)
    with pytest.raises(BackupError, match="not the dump that verified: its sha256 differs"):
        restore(settings, name, target)
    with psycopg.connect(target) as conn:
        assert manifest(conn) == []  # nothing was restored
    with pytest.raises(FileNotFoundError, match=rf"no backup sage-20000101T000000Z.dump in s3://{bucket}/"):
        restore(settings, "sage-20000101T000000Z.dump", target)


def test_retention_in_s3_and_interrupted_saves(endpoint: S3Endpoint, bucket: str, tmp_path: Path) -> None:
    settings = endpoint.settings(Settings(data_dir=tmp_path), bucket, backup_keep_daily=2, backup_keep_weekly=1)
    client = s3_client(settings)
    now = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    names = [f"sage-{(now - timedelta(days=d)).strftime('%Y%m%dT%H%M%SZ')}" for d in range(5)]
    for name in names:
        client.put_object(Bucket=bucket, Key=f"sage/backups/{name}.json", Body=b"{}")
        client.put_object(Bucket=bucket, Key=f"sage/backups/{name}.dump", Body=b"x")
    interrupted = "sage-20261120T120000Z"  # its manifest was stored, its dump never was
    in_flight = "sage-20261123T030000Z"  # newer than every dump: a save still running
    for name in (interrupted, in_flight):
        client.put_object(Bucket=bucket, Key=f"sage/backups/{name}.json", Body=b"{}")
    deleted = apply_retention(settings)
    assert deleted == sorted([f"{n}.dump" for n in names[2:]] + [f"{interrupted}.json"])
    left = {k.removeprefix("sage/backups/") for k in keys(settings)}
    assert left == {f"{n}.{ext}" for n in names[:2] for ext in ("dump", "json")} | {f"{in_flight}.json"}


def test_s3_errors_name_the_problem_and_keep_the_verified_dump(platform, endpoint, bucket) -> None:  # type: ignore[no-untyped-def]
    wrong_secret = endpoint.settings(platform.settings, bucket, s3_secret_access_key="not-the-secret")
    with pytest.raises(BackupError, match="secret key does not match; check SAGE_S3_SECRET_ACCESS_KEY"):
        list_backups(wrong_secret)
    missing = endpoint.settings(platform.settings, bucket + "-missing")
    with pytest.raises(BackupError, match=r"bucket .*-missing does not exist.*the verified backup is kept at") as err:
        backup_now(missing, platform.db)
    kept = Path(str(err.value).rsplit("kept at ", 1)[1])
    assert kept.exists() and json.loads(kept.with_suffix(".json").read_text())["sha256"]


def test_backup_commands_with_s3(platform, endpoint, bucket, pg_server, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    from sage_platform.cli import main

    for name, value in {"DATABASE_URL": platform.settings.database_url, "DATA_DIR": str(platform.settings.data_dir),
                        "S3_BUCKET": bucket, "S3_ENDPOINT_URL": endpoint.url, "S3_REGION": "us-east-1",
                        "S3_ACCESS_KEY_ID": endpoint.access_key,
                        "S3_SECRET_ACCESS_KEY": endpoint.secret_key}.items():  # fmt: skip
        monkeypatch.setenv(f"SAGE_{name}", value)
    assert main(["backup", "now"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"s3://{bucket}/sage/backups/sage-") and "verified" in out
    assert endpoint.secret_key not in out
    assert main(["backup", "list", "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert main(["restore", listed["name"], "--target-url", create_database(pg_server)]) == 0
    assert "tables match the backup's manifest" in capsys.readouterr().out
    assert main(["doctor"]) == 0
    assert f"[OK  ] backups   1 kept in s3://{bucket}/sage/backups/;" in capsys.readouterr().out
    monkeypatch.setenv("SAGE_S3_SECRET_ACCESS_KEY", "not-the-secret")
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "[FAIL] backups" in out and "the secret key does not match" in out and "not-the-secret" not in out
