"""Operations: backups, alerts, and the agent's workspace files and their object storage."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr

from sage_platform._settings.aliases import also


class OperationsSettings(BaseModel):
    backup_dir: Path | None = Field(None, description="Where backups go; defaults to data_dir/backups.")
    backup_compression: int = Field(1, ge=0, le=9, description="pg_dump gzip level: vectors barely compress.")
    backup_keep_daily: int = Field(7, ge=0, description="Daily backups kept (the newest of each day).")
    backup_keep_weekly: int = Field(4, ge=0, description="Weekly backups kept (the newest of each ISO week).")
    s3_bucket: str | None = Field(None, description="Keep backups in this S3-compatible bucket, not backup_dir.")
    s3_prefix: str = Field("sage/backups/", description="Key prefix of the backups in the bucket.")
    s3_endpoint_url: str | None = Field(None, description="S3-compatible endpoint (MinIO, Ceph RGW…); AWS if unset.")
    s3_region: str | None = Field(None, description="Bucket region; boto3's default when unset.")
    s3_access_key_id: SecretStr | None = Field(None, description="With the secret; boto3's own chain when unset.")
    s3_secret_access_key: SecretStr | None = Field(None, description="Secret of s3_access_key_id.")
    s3_addressing_style: Literal["auto", "path", "virtual"] = Field("auto", description="path for most self-hosted.")
    alert_webhook_url: str | None = Field(None, description="Run failures are POSTed here as JSON.")
    workspace_max_file_bytes: int = Field(20_000_000, gt=0, description="Largest workspace file (upload or write).")
    workspace_retention_days: int = Field(
        0, ge=0, description="Workspace files older than this are deleted by a daily schedule; 0 keeps them."
    )
    # Object storage of the agent's workspace files (the original's RustFS/MinIO settings); checked at start.
    workspace_s3_endpoint: str | None = Field(
        None,
        description="S3-compatible endpoint of workspace files (host:port or URL).",
        validation_alias=also("workspace_s3_endpoint", "SAGE_S3_ENDPOINT", "SAGE_MINIO_ENDPOINT"),
    )
    workspace_s3_access_key: SecretStr | None = Field(
        None,
        description="Access key of workspace_s3_endpoint.",
        validation_alias=also("workspace_s3_access_key", "SAGE_S3_ACCESS_KEY", "SAGE_MINIO_ACCESS_KEY"),
    )
    workspace_s3_secret_key: SecretStr | None = Field(
        None,
        description="Secret key of workspace_s3_endpoint.",
        validation_alias=also("workspace_s3_secret_key", "SAGE_S3_SECRET_KEY", "SAGE_MINIO_SECRET_KEY"),
    )
    workspace_s3_bucket: str | None = Field(
        None,
        description="Bucket of workspace files.",
        validation_alias=also("workspace_s3_bucket", "SAGE_S3_BUCKET_NAME", "SAGE_MINIO_BUCKET_NAME"),
    )
    workspace_s3_secure: bool = Field(
        False,
        description="HTTPS to workspace_s3_endpoint when it gives no scheme.",
        validation_alias=also("workspace_s3_secure", "SAGE_S3_SECURE", "SAGE_MINIO_SECURE"),
    )
