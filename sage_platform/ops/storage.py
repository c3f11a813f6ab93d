"""Where verified backups are kept: a local folder, or an S3-compatible bucket when ``SAGE_S3_BUCKET`` is set.

A backup is the pair ``sage-<UTC time>.json`` (its manifest) and ``sage-<UTC time>.dump``. The manifest is
stored first and the dump last, so a listed dump always has its manifest; a manifest left alone by an
interrupted upload is removed by retention. Both stores keep the same names, so ``sage restore NAME``
works the same way for either.

Usage::

    storage = backup_storage(settings)        # LocalStorage or S3Storage, from the settings
    storage.save(Path("staged.partial"), "sage-20261123T020000Z.dump", manifest)
    with storage.local_copy("sage-20261123T020000Z.dump") as dump:
        ...                                   # a file pg_restore can read (downloaded from S3 if need be)
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from pydantic import SecretStr

from sage_platform.config import Settings
from sage_platform.ingest.safe_files import write_private_file

STAMP = "%Y%m%dT%H%M%SZ"
PART_SIZE = 64 * 2**20  # multipart pieces: few requests for a large dump, bounded memory per thread


class BackupError(RuntimeError):
    pass


@dataclass(frozen=True)
class StoredBackup:
    name: str  # sage-<UTC time>.dump
    location: str  # a path, or s3://bucket/key
    size_bytes: int

    @property
    def created_at(self) -> datetime:
        return stamp_of(self.name)


def stamp_of(name: str) -> datetime:
    stem = name.removesuffix(".dump").removesuffix(".json").removeprefix("sage-")
    return datetime.strptime(stem, STAMP).replace(tzinfo=UTC)


def manifest_name(name: str) -> str:
    return name.removesuffix(".dump") + ".json"


class BackupStorage(Protocol):
    description: str

    def save(self, staged: Path, name: str, manifest: dict[str, Any]) -> str:
        """Store a verified dump (consumed) under ``name`` with its manifest; returns its location."""

    def backups(self) -> list[StoredBackup]:
        """Every stored dump, newest first."""

    def manifest(self, name: str) -> dict[str, Any] | None: ...

    def delete(self, name: str) -> None:
        """Delete a dump and its manifest (either may already be gone)."""

    def orphan_manifests(self) -> list[str]:
        """Manifests whose dump never arrived (an interrupted save)."""

    def local_copy(self, name: str) -> Any:
        """Context manager yielding a local path of the dump; FileNotFoundError when there is none."""


class LocalStorage:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.description = str(folder)

    def save(self, staged: Path, name: str, manifest: dict[str, Any]) -> str:
        """Manifest, then dump, each 0600 and fsynced, then the folder: a listed dump is whole and private."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private_file(self.folder / manifest_name(name), json.dumps(manifest, indent=2).encode())
        os.chmod(staged, 0o600)
        staged.replace(self.folder / name)
        folder = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(folder)  # the renames themselves survive a crash
        finally:
            os.close(folder)
        return str(self.folder / name)

    def backups(self) -> list[StoredBackup]:
        found = sorted(self.folder.glob("sage-*.dump"), reverse=True)
        return [StoredBackup(p.name, str(p), p.stat().st_size) for p in found]

    def manifest(self, name: str) -> dict[str, Any] | None:
        path = self.folder / manifest_name(name)
        return json.loads(path.read_text()) if path.exists() else None

    def delete(self, name: str) -> None:
        (self.folder / name).unlink(missing_ok=True)
        (self.folder / manifest_name(name)).unlink(missing_ok=True)

    def orphan_manifests(self) -> list[str]:
        return [p.name for p in self.folder.glob("sage-*.json") if not p.with_suffix(".dump").exists()]

    @contextmanager
    def local_copy(self, name: str) -> Iterator[Path]:
        path = self.folder / name
        if not path.exists():
            raise FileNotFoundError(f"no backup {name} in {self.description}; `sage backup list` shows them")
        yield path


class S3Storage:
    """An S3-compatible bucket through boto3 (AWS, MinIO, Ceph RGW, R2…), under a key prefix."""

    def __init__(self, client: Any, bucket: str, prefix: str, staging: Path) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        self.staging = staging
        self.description = f"s3://{bucket}/{self.prefix}"

    def _key(self, name: str) -> str:
        return self.prefix + name

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """botocore's errors, named by what was being done where (bad keys, a missing bucket, no endpoint)."""
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in ("404", "NoSuchKey"):
                raise
            hint = {"NoSuchBucket": f"bucket {self.bucket} does not exist; create it or set SAGE_S3_BUCKET",
                    "InvalidAccessKeyId": "the access key is not known; check SAGE_S3_ACCESS_KEY_ID",
                    "SignatureDoesNotMatch": "the secret key does not match; check SAGE_S3_SECRET_ACCESS_KEY",
                    "AccessDenied": "access denied; the key needs list, get, put and delete on the prefix"}.get(code)  # fmt: skip
            raise BackupError(f"S3 {action} at {self.description} failed: {hint or error}") from error
        except (BotoCoreError, Boto3Error) as error:  # no endpoint, a dropped connection, a failed multipart
            raise BackupError(f"S3 {action} at {self.description} failed: {error}") from error

    def save(self, staged: Path, name: str, manifest: dict[str, Any]) -> str:
        with self._errors("upload"):
            return self._save(staged, name, manifest)

    def _save(self, staged: Path, name: str, manifest: dict[str, Any]) -> str:
        from boto3.s3.transfer import TransferConfig

        body = json.dumps(manifest, indent=2).encode()
        self.client.put_object(Bucket=self.bucket, Key=self._key(manifest_name(name)), Body=body,
                               ContentType="application/json")  # fmt: skip
        config = TransferConfig(multipart_threshold=PART_SIZE, multipart_chunksize=PART_SIZE, max_concurrency=4)
        extra = {"Metadata": {"sha256": str(manifest.get("sha256", ""))}}
        self.client.upload_file(str(staged), self.bucket, self._key(name), ExtraArgs=extra, Config=config)
        stored = self.client.head_object(Bucket=self.bucket, Key=self._key(name))
        size = staged.stat().st_size
        if stored["ContentLength"] != size:
            raise BackupError(f"{self.description}{name} holds {stored['ContentLength']} bytes, the dump {size}")
        staged.unlink()
        return self.description + name

    def _objects(self) -> Iterator[dict[str, Any]]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix + "sage-")
        for page in pages:
            yield from page.get("Contents", [])

    def backups(self) -> list[StoredBackup]:
        with self._errors("listing"):
            found = [o for o in self._objects() if o["Key"].endswith(".dump")]
        out = [StoredBackup(o["Key"].removeprefix(self.prefix), f"s3://{self.bucket}/{o['Key']}", o["Size"])
               for o in found]  # fmt: skip
        return sorted(out, key=lambda b: b.name, reverse=True)

    def manifest(self, name: str) -> dict[str, Any] | None:
        try:
            with self._errors("read"):
                found = self.client.get_object(Bucket=self.bucket, Key=self._key(manifest_name(name)))
        except self.client.exceptions.NoSuchKey:
            return None
        manifest: dict[str, Any] = json.loads(found["Body"].read())
        return manifest

    def delete(self, name: str) -> None:
        keys = [{"Key": self._key(name)}, {"Key": self._key(manifest_name(name))}]
        with self._errors("delete"):
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})

    def orphan_manifests(self) -> list[str]:
        with self._errors("listing"):
            keys = {o["Key"].removeprefix(self.prefix) for o in self._objects()}
        return [k for k in keys if k.endswith(".json") and k.removesuffix(".json") + ".dump" not in keys]

    @contextmanager
    def local_copy(self, name: str) -> Iterator[Path]:
        from botocore.exceptions import ClientError

        self.staging.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.staging, prefix="restore-") as folder:
            path = Path(folder) / name
            try:
                with self._errors("download"):
                    self.client.download_file(self.bucket, self._key(name), str(path))
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                    raise FileNotFoundError(
                        f"no backup {name} in {self.description}; `sage backup list` shows them"
                    ) from None
                raise
            yield path


def staging_dir(settings: Settings) -> Path:
    """Dumps are written and verified here before they are stored."""
    return (settings.backup_dir or settings.data_dir / "backups").resolve()


def backup_storage(settings: Settings) -> LocalStorage | S3Storage:
    if not settings.s3_bucket:
        given = [n for n in ("s3_endpoint_url", "s3_access_key_id", "s3_secret_access_key") if getattr(settings, n)]
        if given:
            raise ValueError(f"SAGE_{given[0].upper()} is set but SAGE_S3_BUCKET is not: name the backup bucket")
        return LocalStorage(staging_dir(settings))
    return S3Storage(s3_client(settings), settings.s3_bucket, settings.s3_prefix, staging_dir(settings))


def s3_client(settings: Settings) -> Any:  # botocore builds the S3 client class at run time
    """A boto3 client from SAGE_S3_*; unset keys fall back to boto3's own chain (AWS_*, profiles, roles)."""
    key, secret = settings.s3_access_key_id, settings.s3_secret_access_key
    if bool(key) != bool(secret):
        raise ValueError("set both SAGE_S3_ACCESS_KEY_ID and SAGE_S3_SECRET_ACCESS_KEY, or neither")
    return make_s3_client(settings.s3_endpoint_url, key, secret, region=settings.s3_region,
                          addressing_style=settings.s3_addressing_style)  # fmt: skip


def make_s3_client(
    endpoint_url: str | None,
    key: SecretStr | None,
    secret: SecretStr | None,
    *,
    region: str | None = None,
    addressing_style: str = "auto",
    attempts: int = 5,
    connect_timeout: float = 60,
) -> Any:
    """Any S3 API through boto3: backups and the agent's workspace files share this one client setup."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url or None,  # an empty variable (compose's default) means AWS
        region_name=region or None,
        aws_access_key_id=key.get_secret_value() if key else None,
        aws_secret_access_key=secret.get_secret_value() if secret else None,
        config=Config(
            retries={"max_attempts": attempts, "mode": "standard"},
            s3={"addressing_style": addressing_style},
            connect_timeout=connect_timeout,
        ),
    )


def workspace_storage_problem(settings: Settings) -> str | None:
    """None when the workspace bucket answers (or none is set); else what is wrong, for people to read."""
    if settings.workspace_s3_endpoint is None and settings.workspace_s3_bucket is None:
        return None
    where = f"workspace object storage at {settings.workspace_s3_url or 'AWS'} (bucket {settings.workspace_s3_bucket})"
    if not settings.workspace_s3_bucket:
        return f"{where}: no bucket named; set --s3_bucket_name (SAGE_S3_BUCKET_NAME)"
    from botocore.exceptions import BotoCoreError, ClientError

    client = make_s3_client(settings.workspace_s3_url, settings.workspace_s3_access_key,
                            settings.workspace_s3_secret_key, addressing_style="path", attempts=1, connect_timeout=3)  # fmt: skip
    try:
        client.head_bucket(Bucket=settings.workspace_s3_bucket)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        return f"{where} answered {code or 'an error'}: check the bucket and the keys (--s3_access_key/--s3_secret_key)"
    except BotoCoreError as error:
        return f"{where} cannot be reached: {type(error).__name__}; start MinIO/RustFS or unset the s3 settings"
    return None
