"""Where every benchmark writes its figures: bench/results/<name>.json (ignored by git)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def save_results(name: str, results: Any, *, show: bool = True) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(results, indent=2))
    if show:
        print(json.dumps(results, indent=2))
    return path
