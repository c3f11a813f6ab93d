"""Assets carry code versions from the chunker, embedder and index fingerprints."""

from __future__ import annotations

from sage_platform.config import Settings
from sage_platform.fingerprints import code_versions


def test_a_setting_changes_the_versions_of_the_stages_it_affects_and_only_those() -> None:
    base = code_versions(Settings())
    for change in ({"chunk_size": 300}, {"chunk_overlap": 40}):  # one setting at a time
        changed_settings = code_versions(Settings(**change))  # type: ignore[arg-type]
        assert {name for name in base if base[name] != changed_settings[name]} == {
            "document_chunks",
            "chunk_embeddings",
        }
    api = code_versions(Settings(embedding_base_url="http://127.0.0.1:9/v1", embedding_model="m"))
    assert all(api[name] != base[name] for name in base)
    assert api["document_chunks"].split(":")[1] == "chars"  # API models chunk by characters
    french = code_versions(Settings(text_search_language="french"))
    assert {name for name in base if base[name] != french[name]} == {"document_chunks", "pgvector_index", "es_index"}


def test_the_definitions_carry_the_versions_of_the_environment() -> None:
    from sage_platform.definitions import defs

    nodes = {node.key.path[-1]: node.code_version for node in defs.resolve_asset_graph().asset_nodes}
    assert {name: nodes[name] for name in code_versions(Settings())} == code_versions(Settings())
