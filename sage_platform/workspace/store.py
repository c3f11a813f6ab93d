"""Where workspace files' bytes live: a local folder (the default) or any S3 API.

Keys are ids the platform makes (``<file_id>``), never names or paths a user gave, so no upload or
tool call can reach outside the store. The S3 store uses the same client setup as backups
(``sage_platform.ops.storage.make_s3_client``).

Usage::

    store = file_store(settings)          # LocalFileStore, or S3FileStore with SAGE_WORKSPACE_S3_BUCKET
    store.put("3f2a…", b"bytes"); store.get("3f2a…"); store.delete("3f2a…")
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Protocol

from sage_platform.config import Settings

_KEY = re.compile(r"^[0-9a-f]{32}$")


class FileStoreError(RuntimeError):
    """The store cannot be used; the message says which store and why."""


def _checked(key: str) -> str:
    if not _KEY.match(key):
        raise ValueError(f"not a file key: {key!r}")  # only ids the platform made
    return key


class FileStore(Protocol):
    description: str

    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes: ...

    def delete(self, key: str) -> None: ...


class LocalFileStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.description = str(folder)

    def _path(self, key: str) -> Path:
        key = _checked(key)
        return self.folder / key[:2] / key

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        partial = path.with_suffix(".partial")
        with open(partial, "wb") as out:  # written whole, then renamed: a crash leaves no half file
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


class S3FileStore:
    def __init__(self, client: Any, bucket: str, prefix: str = "workspace/") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.description = f"s3://{bucket}/{prefix}"

    def _call(self, action: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, action)(Bucket=self.bucket, **kwargs)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404"):
                raise FileNotFoundError(f"{self.description}{kwargs.get('Key', '')}") from error
            raise FileStoreError(f"{self.description}: {action} failed ({code or error})") from error
        except BotoCoreError as error:
            raise FileStoreError(f"{self.description}: {action} failed ({type(error).__name__})") from error

    def put(self, key: str, data: bytes) -> None:
        self._call("put_object", Key=self.prefix + _checked(key), Body=data)

    def get(self, key: str) -> bytes:
        body: bytes = self._call("get_object", Key=self.prefix + _checked(key))["Body"].read()
        return body

    def delete(self, key: str) -> None:
        self._call("delete_object", Key=self.prefix + _checked(key))


def file_store(settings: Settings) -> LocalFileStore | S3FileStore:
    """S3 when a bucket is named (SAGE_WORKSPACE_S3_BUCKET or the original's SAGE_S3_BUCKET_NAME), else local."""
    if settings.workspace_s3_bucket:
        from sage_platform.ops.storage import make_s3_client

        client = make_s3_client(settings.workspace_s3_url, settings.workspace_s3_access_key,
                                settings.workspace_s3_secret_key, addressing_style="path")  # fmt: skip
        return S3FileStore(client, settings.workspace_s3_bucket)
    return LocalFileStore(settings.data_dir.resolve() / "workspace_files")
