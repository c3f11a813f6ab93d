"""One list of settings: ``Settings`` declares every knob; the CLI and the Dagster resource derive from it."""

from __future__ import annotations

import argparse
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest

from sage_platform.cli import build_parser, main
from sage_platform.cli._flags import settings_from
from sage_platform.config import Settings
from sage_platform.resources import SageResource
from tests._imports import heavy_modules_loaded

FIELDS = Settings.model_fields


def parsers(parser: argparse.ArgumentParser, path: str = "sage") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from parsers(sub, f"{path} {name}")


def options() -> Iterator[tuple[str, argparse.Action]]:
    for path, parser in parsers(build_parser()):
        for action in parser._actions:
            if action.option_strings:
                yield path, action


def test_every_setting_is_described() -> None:
    assert [name for name, field in FIELDS.items() if not field.description] == []


def test_the_dagster_resource_declares_no_knob_of_its_own() -> None:
    for name, field in SageResource.model_fields.items():
        assert name in FIELDS, f"SageResource.{name} is not a setting"
        assert field.description == FIELDS[name].description
        setting_types = {int if kind is int else str for kind in typing.get_args(FIELDS[name].annotation) or
                         (FIELDS[name].annotation,) if kind is not type(None)}  # fmt: skip
        assert set(typing.get_args(field.annotation)) - {type(None)} == setting_types, name


def test_every_flag_for_a_knob_is_derived_from_its_setting() -> None:
    seen = 0
    for path, action in options():
        if action.dest not in FIELDS:
            continue
        seen += 1
        if action.help != argparse.SUPPRESS:  # hidden aliases share the visible flag's dest and type
            assert f"SAGE_{action.dest.upper()}" in (action.help or ""), f"{path} {action.option_strings}"
            assert (action.help or "").startswith(FIELDS[action.dest].description or "?"), path
    assert seen > 100


def test_visible_flags_are_kebab_case_and_snake_case_spellings_still_work() -> None:
    visible = [
        f"{path} {flag}"
        for path, action in options()
        if action.help != argparse.SUPPRESS
        for flag in action.option_strings
        if "_" in flag
    ]
    assert visible == []
    args = build_parser().parse_args(
        ["serve", "--default_llm_model_name", "m", "--no_auth", "--preset_mcp_config", "tools.json", "--port", "9"]
    )
    settings = settings_from(args)
    assert (settings.default_llm_model_name, settings.no_auth, settings.port) == ("m", True, 9)
    assert settings.mcp_config_path == Path("tools.json")


def test_choices_come_from_the_settings_types() -> None:
    parser = build_parser()
    for bad in (
        ["serve", "--memory-type", "global"],
        ["serve", "--db-type", "oracle"],
        ["search", "q", "--retriever", "x"],
    ):
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args(bad)
        assert exit_info.value.code == 2


def test_each_command_takes_only_the_flags_it_uses() -> None:
    flags = {path: {f for a in parser._actions for f in a.option_strings} for path, parser in parsers(build_parser())}
    assert "--chunk-size" in flags["sage materialize"]
    for path in ("sage serve", "sage search", "sage report", "sage keys create", "sage memory search", "sage mcp"):
        assert "--chunk-size" not in flags[path], path
    assert "--default-llm-model-name" not in flags["sage materialize"]


def test_help_imports_neither_the_servers_nor_dagster() -> None:
    code = (
        "import contextlib, io\n"
        "from sage_platform.cli import main\n"
        "for argv in (['--help'], ['serve', '--help'], ['mcp', '--help'], ['up', '--help']):\n"
        "    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "        main(argv)\n"
    )
    heavy = ("fastapi", "dagster", "torch", "psycopg", "mcp", "sage_platform.server", "sage_platform.agent")
    assert heavy_modules_loaded(code, heavy) == []


def test_errors_while_running_exit_1_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--data-dir", str(tmp_path)]) == 1
    assert capsys.readouterr().err.strip() == "no evaluation yet: run `sage materialize` first"
    assert main(["task", "status", "t_missing", "--data-dir", str(tmp_path), "--database-url", "postgresql://"
                 "127.0.0.1:1/none"]) == 1  # fmt: skip
    err = capsys.readouterr().err
    assert err.startswith("sage: error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_a_search_before_any_index_says_so_in_one_line(
    migrated_database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["search", "anything", "--local", "--database-url", migrated_database_url]) == 1
    err = capsys.readouterr().err
    assert err == "sage: error: the database has no index yet: run `sage materialize` (or `sage up`) first\n"
