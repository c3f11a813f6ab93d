"""The one composition root: ``dagster dev -m sage_platform.definitions`` or workspace.yaml.

Platform-wide policy lives here:
- every asset runs in one process per run (``in_process_executor``): the embedding model loads
  once per run instead of once per step, and steps share a warm database connection path;
- the ``sage`` resource reads ``SAGE_*`` settings, so one environment configures the whole graph.
"""

from dagster import Definitions, in_process_executor

from sage_platform.assets import rag_assets
from sage_platform.assets.checks import quality_checks
from sage_platform.jobs import jobs
from sage_platform.resources import SageResource
from sage_platform.sensors import schedules, sensors

defs = Definitions(
    assets=rag_assets,
    asset_checks=quality_checks,
    jobs=jobs,
    schedules=schedules,
    sensors=sensors,
    resources={"sage": SageResource()},
    executor=in_process_executor,
)
