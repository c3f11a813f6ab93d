"""A real S3-compatible server for the backup tests: Ceph's RADOS Gateway on a one-node cluster.

Debian's ``radosgw``, ``ceph-mon`` and ``ceph-osd`` (installed by ``scripts/install-test-tools``) run a
monitor, one in-memory OSD and the gateway on loopback, in a temporary folder, for the test session. The
gateway checks AWS signatures, does multipart uploads and pagination as any S3 service does.

When ``SAGE_S3_ENDPOINT_URL``, ``SAGE_S3_ACCESS_KEY_ID`` and ``SAGE_S3_SECRET_ACCESS_KEY`` are set for the
test run, that endpoint is used instead (MinIO, AWS…), and nothing is started.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sage_platform.config import Settings

# Read at import: the per-test fixture clears SAGE_* variables.
LIVE = {name: os.environ.get(f"SAGE_S3_{name}") for name in ("ENDPOINT_URL", "ACCESS_KEY_ID", "SECRET_ACCESS_KEY")}
DAEMONS = ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "monmaptool", "ceph-authtool", "ceph")


@dataclass(frozen=True)
class S3Endpoint:
    url: str
    access_key: str
    secret_key: str

    def settings(self, base: Settings, bucket: str, **overrides: Any) -> Settings:
        """``base`` with backups kept in ``bucket`` here; validated again, as settings from the environment are."""
        return Settings.model_validate({**base.model_dump(),
            "s3_bucket": bucket, "s3_endpoint_url": self.url, "s3_region": "us-east-1", "s3_addressing_style": "path",
            "s3_access_key_id": self.access_key, "s3_secret_access_key": self.secret_key, **overrides,
        })  # fmt: skip


def unavailable_reason() -> str | None:
    if all(LIVE.values()):
        return None
    missing = [d for d in DAEMONS if shutil.which(d) is None]
    if missing:
        return (f"no S3-compatible server: {', '.join(missing)} not installed (scripts/install-test-tools installs "
                "Debian's radosgw, ceph-mon and ceph-osd as root) and SAGE_S3_ENDPOINT_URL is not set")  # fmt: skip
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(root: Path, fsid: str, mon_port: int, rgw_port: int) -> str:
    return f"""[global]
fsid = {fsid}
mon host = v1:127.0.0.1:{mon_port}
public addr = 127.0.0.1
ms bind msgr2 = false
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
osd crush update on start = false
osd class update on start = false
osd objectstore = memstore
memstore device bytes = {3 * 2**30}
run dir = {root}/run
log file = {root}/log/$name.log
admin socket = {root}/run/$name.asok
keyring = {root}/keyring
mon data = {root}/mon
osd data = {root}/osd
[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:{rgw_port}
rgw data = {root}/rgw
"""


def _wait_for_http(url: str, process: subprocess.Popen[bytes], deadline: float) -> None:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"radosgw exited with {process.returncode}") from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)  # polling for readiness; the gateway opens its port once its pools exist


MON_NOT_READY = "problem getting command descriptions from mon"


@contextmanager
def ceph_rgw() -> Iterator[S3Endpoint]:
    """Start a one-node Ceph cluster with the gateway; stop it and remove its data on exit."""
    root = Path(tempfile.mkdtemp(prefix="sage-rgw-"))
    for folder in ("mon", "osd", "run", "log", "rgw"):
        (root / folder).mkdir()
    conf = root / "ceph.conf"
    fsid, mon_port, rgw_port = str(uuid.uuid4()), _free_port(), _free_port()
    conf.write_text(_config(root, fsid, mon_port, rgw_port))
    c = ["-c", str(conf)]
    processes: list[subprocess.Popen[bytes]] = []

    def run(*command: str) -> str:
        deadline = time.monotonic() + 60
        while True:
            done = subprocess.run([*command, *c], capture_output=True, text=True, timeout=120)
            # A monitor still settling answers "problem getting command descriptions": ask again.
            if done.returncode == 0 or MON_NOT_READY not in done.stderr or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.strip()[-500:]}")
        return done.stdout.strip()

    def daemon(*command: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen([*command, *c, "-f"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes.append(process)
        return process

    try:
        run("ceph-authtool", "--create-keyring", str(root / "keyring"), "--gen-key", "-n", "mon.", "--cap", "mon",
            "allow *")  # fmt: skip
        run("monmaptool", "--create", "--addv", "a", f"[v1:127.0.0.1:{mon_port}]", "--fsid", fsid, str(root / "monmap"))
        run("ceph-mon", "--mkfs", "-i", "a", "--monmap", str(root / "monmap"), "--keyring", str(root / "keyring"))
        daemon("ceph-mon", "-i", "a")
        osd_uuid = str(uuid.uuid4())  # given to both sides: the OSD must boot as the one the monitor knows
        osd = run("ceph", "--connect-timeout", "60", "osd", "create", osd_uuid)
        run("ceph-osd", "-i", osd, "--mkfs", "--osd-uuid", osd_uuid)
        run("ceph", "osd", "crush", "add-bucket", "localhost", "host")
        run("ceph", "osd", "crush", "move", "localhost", "root=default")
        run("ceph", "osd", "crush", "add", f"osd.{osd}", "1.0", "host=localhost")
        daemon("ceph-osd", "-i", osd)
        gateway = daemon("radosgw", "-n", "client.rgw")
        url = f"http://127.0.0.1:{rgw_port}"
        _wait_for_http(url, gateway, time.monotonic() + 40)
        access, secret = uuid.uuid4().hex[:20].upper(), uuid.uuid4().hex
        run("radosgw-admin", "user", "create", "--uid", "sage", "--display-name", "sage", "--access-key", access,
            "--secret", secret)  # fmt: skip
        yield S3Endpoint(url, access, secret)
    finally:
        for process in reversed(processes):
            process.send_signal(signal.SIGTERM)
        for process in reversed(processes):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if not os.environ.get("SAGE_TEST_KEEP_RGW"):
            shutil.rmtree(root, ignore_errors=True)


@contextmanager
def s3_endpoint() -> Iterator[S3Endpoint]:
    if all(LIVE.values()):
        yield S3Endpoint(LIVE["ENDPOINT_URL"] or "", LIVE["ACCESS_KEY_ID"] or "", LIVE["SECRET_ACCESS_KEY"] or "")
        return
    with ceph_rgw() as endpoint:
        yield endpoint
