"""Run-failure alerts: a row in ``alerts`` for every failed run, and a JSON POST to
``SAGE_ALERT_WEBHOOK_URL`` when it is set. One alert per run, however often the sensor sees it.

Usage::

    alert = record_failure(db, settings, run_id="…", job_name="rag_job", error="…", tags={})
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb

from sage_platform.config import Settings
from sage_platform.db import Database


@dataclass
class Alert:
    alert_id: int
    run_id: str
    job_name: str
    error: str
    webhook: str | None
    new: bool


def post_webhook(url: str, payload: dict[str, Any], timeout: float = 5.0) -> str:
    """``delivered`` or ``failed: <reason>``; never raises (an alert must not fail the sensor)."""
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return "delivered" if 200 <= response.status < 300 else f"failed: HTTP {response.status}"
    except urllib.error.HTTPError as error:
        return f"failed: HTTP {error.code}"
    except (urllib.error.URLError, OSError) as error:
        return f"failed: {getattr(error, 'reason', error)}"


def record_failure(
    db: Database, settings: Settings, *, run_id: str, job_name: str, error: str, tags: dict[str, str]
) -> Alert:
    with db.connect() as conn:
        row = conn.execute(
            """INSERT INTO alerts (run_id, job_name, error, tags) VALUES (%s, %s, %s, %s)
               ON CONFLICT (run_id) DO NOTHING RETURNING alert_id""",
            (run_id, job_name, error[:10_000], Jsonb(tags)),
        ).fetchone()
    if row is None:  # seen before
        with db.connect() as conn:
            old = conn.execute("SELECT alert_id, error, webhook FROM alerts WHERE run_id = %s", (run_id,)).fetchone()
        assert old is not None
        return Alert(old[0], run_id, job_name, old[1], old[2], new=False)
    webhook = None
    if settings.alert_webhook_url:
        payload = {"type": "sage.run_failure", "alert_id": row[0], "run_id": run_id, "job_name": job_name,
                   "error": error[:2000], "tags": tags}  # fmt: skip
        webhook = post_webhook(settings.alert_webhook_url, payload)
        with db.connect() as conn:
            conn.execute("UPDATE alerts SET webhook = %s WHERE alert_id = %s", (webhook, row[0]))
    return Alert(row[0], run_id, job_name, error, webhook, new=True)
