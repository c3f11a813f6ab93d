"""The warm worker: one long-lived process per data folder that keeps the asset graph, Great Expectations
and the embedding model loaded, so that ``sage materialize`` runs in seconds instead of paying ten of
imports first.

- :mod:`sage_platform.worker.protocol`: where its socket is, what must match for a run to go to it, the
  messages (light: the client imports nothing heavy);
- :mod:`sage_platform.worker.client`: ``run_in_worker``, used by ``sage materialize`` and ``sage up``;
- :mod:`sage_platform.worker.server`: ``serve_worker``, the process ``sage up`` (or ``sage worker``) starts.
"""
