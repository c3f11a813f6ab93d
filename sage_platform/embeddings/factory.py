"""Pick the embedder the settings name."""

from __future__ import annotations

from sage_platform.config import Settings
from sage_platform.embeddings.base import Embedder


def embedder_from_settings(settings: Settings) -> Embedder:
    if settings.embedding_base_url:
        from sage_platform.embeddings.openai_api import OpenAIEmbedder

        key = settings.embedding_api_key.get_secret_value() if settings.embedding_api_key else None
        return OpenAIEmbedder(
            settings.embedding_model,
            base_url=settings.embedding_base_url,
            api_key=key,
            batch_size=settings.embedding_batch_size,
        )
    from sage_platform.embeddings.local import LocalEmbedder

    return LocalEmbedder(
        settings.embedding_model, batch_size=settings.embedding_batch_size, threads=settings.embedding_threads
    )
