"""``chunk_embeddings``: the embedding step fanned out over disjoint shards of the missing texts.

plan_embedding_shards ─▶ embed_chunk_shard[0] ─┐
                     └─▶ embed_chunk_shard[1] ─┴─▶ finish_embeddings

Each shard is a step of its own in the ``embedding`` pool, so under ``SAGE_DAGSTER_EXECUTOR=multiprocess``
(or k8s, docker) shards embed at once in separate processes; in process they run one after another.
The plan and each shard's counts pass through the database (``step_values``), never through a disk the
steps might not share.
"""

import math
import os
import time
from typing import Any

from dagster import (
    AssetIn,
    DynamicOut,
    DynamicOutput,
    In,
    Nothing,
    OpExecutionContext,
    Out,
    Output,
    graph_asset,
    op,
)

from sage_platform.assets._metadata import table
from sage_platform.assets._step_values import STEP_VALUES, forget_old_values
from sage_platform.assets.ingestion import CODE_VERSIONS
from sage_platform.config import Settings
from sage_platform.embeddings.embedding_store import count_missing, embed_shard, tidy_embeddings
from sage_platform.resources import SageResource

# Under this many texts per shard, starting another process (imports, model load) costs more than it saves.
MIN_TEXTS_PER_SHARD = 512


def shard_count(settings: Settings, missing: int, cores: int) -> int:
    """How many shards to embed ``missing`` texts in: the setting when given, else one per core when steps
    run in their own processes (fewer for a small backlog), else one."""
    if settings.embedding_shards:
        return settings.embedding_shards
    if settings.dagster_executor == "in_process":
        return 1
    return max(1, min(cores, math.ceil(missing / MIN_TEXTS_PER_SHARD)))


@op(ins={"document_chunks": In(Nothing)}, out=DynamicOut(io_manager_key=STEP_VALUES))
def plan_embedding_shards(context: OpExecutionContext, sage: SageResource) -> Any:
    platform = sage.platform
    missing = count_missing(platform.db, platform.embedder.model_name)
    shards = shard_count(platform.settings, missing, os.cpu_count() or 1)
    context.log.info(f"{missing} chunk texts to embed, in {shards} shard(s)")
    for shard in range(shards):  # at least one, so the rest of the graph runs even with nothing to embed
        plan = {"shard": shard, "shards": shards, "missing": missing, "planned_at": time.time()}
        yield DynamicOutput(plan, mapping_key=str(shard))


@op(pool="embedding", out=Out(io_manager_key=STEP_VALUES))
def embed_chunk_shard(context: OpExecutionContext, sage: SageResource, plan: dict[str, Any]) -> dict[str, Any]:
    platform = sage.platform
    embedder = platform.embedder
    shard, shards = plan["shard"], plan["shards"]
    if shards > 1 and platform.settings.dagster_executor != "in_process":
        from sage_platform.embeddings.local import LocalEmbedder, share_cores

        if isinstance(embedder, LocalEmbedder):
            share_cores(min(shards, os.cpu_count() or 1))  # the shards' processes split the cores, not each all

    def progress(done: int, total: int, rate: float) -> None:
        eta = (total - done) / rate if rate else 0.0
        context.log.info(
            f"shard {shard}/{shards}: embedded {done}/{total} chunk texts ({rate:.1f}/s, ~{eta:.0f}s left)"
        )

    began, started = time.perf_counter(), time.time()
    stats = embed_shard(
        platform.db,
        embedder,
        shard=shard,
        shards=shards,
        texts_per_commit=platform.settings.embedding_commit_every,
        progress=progress,
    )
    return {
        "shard": shard,
        "pid": os.getpid(),
        "embedded": stats.embedded,
        "embedding_s": stats.seconds_embedding,
        "writing_s": stats.seconds_writing,
        "wall_s": time.perf_counter() - began,
        "planned_at": plan["planned_at"],
        "started": started,
        "ended": time.time(),
    }


def _overlap(shards: list[dict[str, Any]]) -> float:
    """Seconds during which at least two shards were embedding at once."""
    edges = sorted([(float(s["started"]), 1) for s in shards] + [(float(s["ended"]), -1) for s in shards])
    overlap, running, last = 0.0, 0, 0.0
    for moment, step in edges:
        if running >= 2:
            overlap += moment - last
        running, last = running + step, moment
    return overlap


@op(out=Out(io_manager_key=STEP_VALUES))
def finish_embeddings(context: OpExecutionContext, sage: SageResource, shards: list[dict[str, Any]]) -> Output[None]:
    platform = sage.platform
    embedder = platform.embedder
    model = embedder.model_name
    retired, dropped = tidy_embeddings(platform.db, model)
    forget_old_values(sage)
    with platform.db.connect() as conn:
        counts = conn.execute("SELECT count(*), count(DISTINCT text_hash) FROM chunks").fetchone()
    chunks, distinct = (int(counts[0]), int(counts[1])) if counts else (0, 0)
    embedded = sum(int(s["embedded"]) for s in shards)
    wall = max((float(s["wall_s"]) for s in shards), default=0.0)
    embedding_s = sum(float(s["embedding_s"]) for s in shards)
    return Output(
        None,
        metadata={
            "model": model,
            "dimension": embedder.dimension,
            "batch_size": embedder.batch_size,
            "chunks": chunks,
            "embedded": embedded,
            "reused": distinct - embedded,
            "retired_other_models": retired,
            "dropped_unused": dropped,
            "shards": len(shards),
            "shard_processes": len({s["pid"] for s in shards}),
            "chunks_per_second": round(embedding_s and embedded / embedding_s, 2),
            "embedding_s": round(embedding_s, 3),
            "writing_s": round(sum(float(s["writing_s"]) for s in shards), 3),
            "slowest_shard_s": round(wall, 3),
            "duration_s": round(time.time() - min((float(s["planned_at"]) for s in shards), default=time.time()), 3),
            "shards_overlap_s": round(_overlap(shards), 3),
            "per_shard": table(
                [("shard", "int"), ("pid", "int"), ("embedded", "int"), ("seconds", "float")],
                [(s["shard"], s["pid"], s["embedded"], round(float(s["wall_s"]), 3)) for s in shards],
            ),
        },
    )


@graph_asset(
    group_name="rag",
    kinds={"pytorch", "postgres"},
    ins={"document_chunks": AssetIn(dagster_type=Nothing)},
    code_version=CODE_VERSIONS["chunk_embeddings"],
)
def chunk_embeddings(document_chunks: None) -> Any:
    """One vector per (model, chunk text). Only texts never embedded with this model are embedded, in
    disjoint shards that run as parallel steps when the executor runs steps in their own processes."""
    shards = plan_embedding_shards(document_chunks=document_chunks).map(embed_chunk_shard)
    return finish_embeddings(shards.collect())
