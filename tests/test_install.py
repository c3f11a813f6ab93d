"""The install: exactly the committed lock, one Dagster family, and a wheel that runs outside the tree."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

from sage_platform.db import stop_embedded_server
from sage_platform.dependencies import (
    DAGSTER_FAMILY,
    dagster_family_problems,
    installed_versions,
    library_version_for,
)
from tests._children import Child
from tests.mcp_tool_server import free_port

REPO = Path(__file__).resolve().parent.parent
LOCK = REPO / "requirements.lock"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lock_pins() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        match = _PIN.match(line)
        if match:
            pins[_normalize(match[1])] = match[2]
    return pins


def test_the_installed_dagster_family_is_one_release() -> None:
    problems = dagster_family_problems(installed_versions(DAGSTER_FAMILY))
    assert not problems, "mixed Dagster family installed:\n" + "\n".join(problems)


def test_a_mixed_family_is_reported_package_by_package() -> None:
    # What an unlocked install did on 2026-11-30: a new dagster, a 2021 dagster-postgres.
    versions = {name: "1.13.28" for name in DAGSTER_FAMILY} | {"dagster-postgres": "0.11.14", "dagster-pipes": None}
    problems = dagster_family_problems(versions)
    assert problems == [
        "dagster-pipes is not installed (dagster 1.13.28 needs dagster-pipes 1.13.28)",
        "dagster-postgres 0.11.14 does not belong with dagster 1.13.28 (expected dagster-postgres 0.29.28)",
    ]
    assert dagster_family_problems({name: "1.13.27" for name in DAGSTER_FAMILY} | {"dagster-postgres": "0.29.27"}) == []
    assert library_version_for("1.12.9") == "0.28.9"


def test_pip_check_finds_no_broken_requirement() -> None:
    done = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_lock_pins_every_package_with_hashes_and_one_dagster_family() -> None:
    text = LOCK.read_text()
    requirements = [block for block in re.split(r"\n(?=\S)", text) if block and not block.startswith("#")]
    assert len(requirements) > 100
    for block in requirements:
        assert _PIN.match(block), f"not an exact pin: {block.splitlines()[0]}"
        assert "--hash=sha256:" in block, f"no hash: {block.splitlines()[0]}"
    pins = _lock_pins()
    assert not dagster_family_problems({name: pins.get(name) for name in DAGSTER_FAMILY})
    assert pins["torch"].endswith("+cpu"), "the lock must hold the CPU build of torch"


def test_what_is_installed_is_exactly_the_lock() -> None:
    pins = _lock_pins()
    installed = installed_versions(pins)
    differ = {name: (pins[name], installed[name]) for name in pins if installed[name] != pins[name]}
    assert not differ, f"installed versions differ from requirements.lock (lock, installed): {differ}"


def test_pyproject_pins_the_dagster_family_together() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pinned = {}
    for requirement in project["dependencies"]:
        name, _, version = requirement.partition("==")
        pinned[_normalize(name)] = version or None
    family = {name: pinned.get(name) for name in DAGSTER_FAMILY}
    assert not dagster_family_problems(family), family
    assert family == {name: _lock_pins()[name] for name in DAGSTER_FAMILY}


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built from a copy of the tree (building writes build/ and egg-info)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("sage_platform", "assets", "jobs", "sensors"):
        shutil.copytree(REPO / name, source / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "dagster.yaml", "workspace.yaml"):
        shutil.copy(REPO / name, source / name)
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out), str(source)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (built,) = out.glob("sage_platform-*.whl")
    return built


def test_the_wheel_holds_the_package_data_and_no_generic_top_level_packages(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names if not name.split("/")[0].endswith((".dist-info", ".data"))}
    assert top_level == {"sage_platform"}
    for expected in (
        "sage_platform/server/static/index.html",
        "sage_platform/server/static/chat.js",
        "sage_platform/instance/dagster.yaml",
        "sage_platform/instance/workspace.yaml",
        "sage_platform/db/migrations/script.py.mako",
        "sage_platform/db/migrations/versions/0001_spine.py",
        "sage_platform/sample/sage_docs.jsonl",
        "sage_platform/sample/corpus/architecture.md",
        "sage_platform/assets/ingestion.py",
        "sage_platform/jobs/__init__.py",
        "sage_platform/sensors/inbox.py",
    ):
        assert expected in names, f"{expected} missing from {wheel.name}"
    # The packaged instance config is the repository's, not a stale copy.
    with zipfile.ZipFile(wheel).open("sage_platform/instance/dagster.yaml") as packaged:
        assert packaged.read() == (REPO / "dagster.yaml").read_bytes()


def test_a_wheel_installed_outside_the_tree_serves_the_chat_page(
    wheel: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    done = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    # The scratch venv sees the project's dependencies, but not the project: the editable install's
    # finder lives in a .pth file of our site-packages, which a path added this way does not run.
    site = Path(str(subprocess.check_output([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip()))  # fmt: skip
    (site / "project_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {
        key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "SAGE_CORPUS_DIR", "SAGE_EVAL_SET")
    }
    env |= {"SAGE_DATA_DIR": str(tmp_path / "data"), "SAGE_PORT": str(free_port())}

    probe = (
        "import importlib.util, json, sage_platform, yaml\n"
        "from sage_platform.package_files import SAMPLE_CORPUS_DIR, SAMPLE_EVAL_SET, DAGSTER_YAML\n"
        "from sage_platform.definitions import defs\n"
        "print(json.dumps({'package': sage_platform.__file__, 'assets': importlib.util.find_spec('assets') is not None,"
        " 'corpus': sorted(p.name for p in SAMPLE_CORPUS_DIR.iterdir()), 'golden': SAMPLE_EVAL_SET.is_file(),"
        " 'instance': sorted(yaml.safe_load(DAGSTER_YAML.read_text())), 'job': defs.resolve_job_def('rag_job').name}))"
    )
    found = json.loads(subprocess.check_output([str(python), "-c", probe], cwd=elsewhere, env=env, text=True, timeout=300))  # fmt: skip
    assert found["package"].startswith(str(venv)), found["package"]
    assert not found["assets"], "assets/ must not install as a top-level package"
    assert "architecture.md" in found["corpus"] and found["golden"]
    assert "run_coordinator" in found["instance"] or "concurrency" in found["instance"]
    assert found["job"] == "rag_job"

    url = f"http://127.0.0.1:{env['SAGE_PORT']}"
    request.addfinalizer(lambda: stop_embedded_server(tmp_path / "data" / "pg"))  # sage serve started it
    with Child([str(venv / "bin" / "sage"), "serve"], cwd=elsewhere, env=env, name="sage serve (wheel)") as server:
        server.wait_for(lambda: _answers(f"{url}/health"), timeout=180, what="/health")
        with urllib.request.urlopen(f"{url}/health", timeout=10) as response:
            assert json.loads(response.read())["status"] == "ok"
        with urllib.request.urlopen(f"{url}/", timeout=10) as response:
            assert b"<title>Sage chat</title>" in response.read()
        with urllib.request.urlopen(f"{url}/static/chat.js", timeout=10) as response:
            assert response.status == 200 and len(response.read()) > 1000
