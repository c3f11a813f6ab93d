"""The operator library: sources, indexing, retrieval, prompts, generation, evaluation and sinks,
each a function class over the platform's own parts."""

from sage_platform.dataflow.library.evaluators import (
    BLEU,
    F1,
    MRR,
    NDCG,
    ROUGE,
    Accuracy,
    ContextCompression,
    ExactMatch,
    HitRate,
    Latency,
    Recall,
    TokenCount,
)
from sage_platform.dataflow.library.generators import (
    ExtractiveGenerator,
    LocalGenerator,
    OpenAIGenerator,
    VLLMGenerator,
)
from sage_platform.dataflow.library.indexing import Chunker, ElasticsearchWriter, Embedder, PgVectorWriter
from sage_platform.dataflow.library.promptors import ChatPromptor, QAPromptor
from sage_platform.dataflow.library.reranker import Reranker
from sage_platform.dataflow.library.retrievers import (
    DenseRetriever,
    ElasticsearchRetriever,
    HybridRetriever,
    SparseRetriever,
)
from sage_platform.dataflow.library.sinks import DagsterMetadataSink, DatabaseSink, FileSink, TableSink, TerminalSink
from sage_platform.dataflow.library.sources import APISource, FileSource, JSONLSource, StreamSource, TableSource

__all__ = [
    "APISource",
    "BLEU",
    "F1",
    "MRR",
    "NDCG",
    "ROUGE",
    "Accuracy",
    "ChatPromptor",
    "Chunker",
    "ContextCompression",
    "DagsterMetadataSink",
    "DatabaseSink",
    "DenseRetriever",
    "ElasticsearchRetriever",
    "ElasticsearchWriter",
    "Embedder",
    "ExactMatch",
    "ExtractiveGenerator",
    "FileSink",
    "FileSource",
    "HitRate",
    "HybridRetriever",
    "JSONLSource",
    "Latency",
    "LocalGenerator",
    "OpenAIGenerator",
    "PgVectorWriter",
    "QAPromptor",
    "ROUGE",
    "Recall",
    "Reranker",
    "SparseRetriever",
    "StreamSource",
    "TableSink",
    "TableSource",
    "TerminalSink",
    "TokenCount",
    "VLLMGenerator",
]
