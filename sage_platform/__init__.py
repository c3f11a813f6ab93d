"""Sage Platform: the domain library behind the Dagster asset graph.

The flow: corpus → documents → chunks → embeddings → indexes → answers → evaluation.
Nothing here imports Dagster except ``sage_platform.definitions`` and ``sage_platform.resources``.
"""

__version__ = "0.1.0"
