"""Chunking: token-exact, structure-aware windows with overlap."""

from sage_platform.chunking.chunk_store import ChunkStats, chunk_documents, chunk_id
from sage_platform.chunking.splitter import ChunkSplitter, ChunkText
from sage_platform.tokenization import CharacterTokenizer, HuggingFaceTokenizer, Tokenizer

__all__ = [
    "CharacterTokenizer",
    "ChunkSplitter",
    "ChunkStats",
    "ChunkText",
    "HuggingFaceTokenizer",
    "Tokenizer",
    "chunk_documents",
    "chunk_id",
]
