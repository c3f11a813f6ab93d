"""The quickstart pipeline on `make run`'s defaults: the packaged sample's index, the local embedding
model and the extractive generator (no LLM, no download).

    .venv/bin/python examples/rag_pipeline.py                           # local threads
    .venv/bin/sage pipeline run examples/rag_pipeline.py --env dagster  # one Dagster op per step
    .venv/bin/sage pipeline run examples/rag_pipeline.py --env ray      # Ray actor pools

With an LLM, swap ExtractiveGenerator for OpenAIGenerator({"model": ...}) (any OpenAI-compatible
server, SAGE_DEFAULT_LLM_* for the address and key).
"""

from pathlib import Path

from sage_platform.dataflow import (
    DenseRetriever,
    ExtractiveGenerator,
    FileSource,
    LocalEnvironment,
    QAPromptor,
    TerminalSink,
)

QUESTIONS = Path(__file__).with_name("questions.txt")

env = LocalEnvironment("rag_pipeline")
(env
    .from_source(FileSource, {"file_path": str(QUESTIONS)})
    .map(DenseRetriever, {"model": "sentence-transformers/all-MiniLM-L6-v2"})
    .map(QAPromptor, {"template": "Answer from the context: {context}\nQ: {query}\nA:"})
    .map(ExtractiveGenerator)
    .sink(TerminalSink)
)  # fmt: skip

if __name__ == "__main__":
    print(env.submit().table())
