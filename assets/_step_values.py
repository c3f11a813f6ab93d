"""An IO manager for the small values Dagster passes between steps, kept in the platform's database.

Steps of one run may execute in other processes, containers or Kubernetes Jobs (``SAGE_DAGSTER_EXECUTOR``),
which share no disk: the database is the one place they all reach. Values are JSON (a shard plan, a
step's counts), never data: the data itself lives in the platform's tables. ``None`` is not stored, so a
graph-backed asset whose data lives in tables leaves no row behind.

Usage::

    @op(out=DynamicOut(io_manager_key="step_values"))
    def plan(): ...

    Definitions(..., resources={"sage": SageResource(), "step_values": step_values_io_manager})
"""

from typing import Any

from dagster import InitResourceContext, InputContext, IOManager, OutputContext, io_manager
from psycopg.types.json import Jsonb

from sage_platform.resources import SageResource

STEP_VALUES = "step_values"


def _identifier(context: OutputContext) -> str:
    return "/".join(context.get_identifier())


class StepValuesIOManager(IOManager):
    """JSON values between steps, in ``dagster_step_values`` (keyed by run, step, output, mapping key)."""

    def __init__(self, sage: SageResource) -> None:
        self.sage = sage

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        if obj is None:
            return
        with self.sage.platform.db.connect() as conn:
            conn.execute(
                """INSERT INTO dagster_step_values (identifier, run_id, value) VALUES (%s, %s, %s)
                   ON CONFLICT (identifier) DO UPDATE SET value = EXCLUDED.value""",
                (_identifier(context), context.run_id, Jsonb(obj)),
            )

    def load_input(self, context: InputContext) -> Any:
        upstream = context.upstream_output
        if upstream is None:
            raise ValueError(f"input {context.name!r} has no upstream output to load")
        identifier = _identifier(upstream)
        with self.sage.platform.db.connect() as conn:
            row = conn.execute("SELECT value FROM dagster_step_values WHERE identifier = %s", (identifier,)).fetchone()
        if row is None:
            raise LookupError(f"no stored value for step output {identifier}: was its step run?")
        return row[0]


@io_manager(required_resource_keys={"sage"})
def step_values_io_manager(init_context: InitResourceContext) -> StepValuesIOManager:
    return StepValuesIOManager(init_context.resources.sage)


def forget_old_values(sage: SageResource, days: int = 7) -> int:
    """Drop step values older than ``days``: kept that long so a run can be re-executed from a failed step."""
    with sage.platform.db.connect() as conn:
        return max(
            conn.execute(
                "DELETE FROM dagster_step_values WHERE created_at < now() - make_interval(days => %s)", (days,)
            ).rowcount,
            0,
        )
