from pathlib import Path

import pytest
from pydantic import ValidationError

from sage_platform.cli import build_parser
from sage_platform.cli._flags import settings_from
from sage_platform.config import SAMPLE_CORPUS_DIR, Settings


def test_defaults_point_at_the_shipped_sample() -> None:
    settings = Settings()
    assert settings.corpus_dir == SAMPLE_CORPUS_DIR
    assert settings.eval_set.exists()
    assert settings.data_dir == Path(".sage")
    assert settings.embedded_database


def test_environment_beats_default_and_flag_beats_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGE_CHUNK_SIZE", "120")
    monkeypatch.setenv("SAGE_EMBEDDING_BATCH_SIZE", "7")
    assert Settings().chunk_size == 120
    args = build_parser().parse_args(["materialize", "--chunk-size", "150"])
    settings = settings_from(args)
    assert settings.chunk_size == 150  # the flag
    assert settings.embedding_batch_size == 7  # the environment
    assert settings.chunk_overlap == 32  # the default


def test_bad_values_name_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGE_CHUNK_SIZE", "not-a-number")
    with pytest.raises(ValidationError, match="chunk_size"):
        Settings()
    with pytest.raises(ValidationError, match="chunk_overlap"):
        Settings(chunk_size=40, chunk_overlap=30)


def test_secrets_are_masked_for_display() -> None:
    settings = Settings(
        default_llm_api_key="sk-secret-value",
        database_url="postgresql://user:hunter2@db.example:5432/sage",
    )
    shown = settings.public_dict()
    assert shown["default_llm_api_key"] == "***"
    assert "hunter2" not in str(shown) and "sk-secret-value" not in str(shown)
    assert shown["database_url"] == "postgresql://user:***@db.example:5432/sage"
    assert "sk-secret-value" not in repr(settings)


def test_the_database_fingerprint_names_the_database_not_its_password() -> None:
    one = Settings(database_url="postgresql://sage:first-pw@db.example:5432/sage")
    other = Settings(database_url="postgresql://sage:second-pw@db.example:5432/sage")
    assert one.database_fingerprint == other.database_fingerprint  # the password plays no part
    assert (
        one.database_fingerprint
        != Settings(database_url="postgresql://sage:first-pw@db.example:5432/other").database_fingerprint
    )
    assert Settings(data_dir=Path("a")).database_fingerprint != Settings(data_dir=Path("b")).database_fingerprint
