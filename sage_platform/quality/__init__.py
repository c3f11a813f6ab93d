"""Data quality: Great Expectations 1.x suites over each stage of the asset graph."""

from sage_platform.quality.gx import ExpectationFailure, QualityResult, validate_frame
from sage_platform.quality.suites import chunks_quality, documents_quality, embeddings_quality, index_quality

__all__ = [
    "ExpectationFailure",
    "QualityResult",
    "chunks_quality",
    "documents_quality",
    "embeddings_quality",
    "index_quality",
    "validate_frame",
]
