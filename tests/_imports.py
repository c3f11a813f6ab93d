"""What a fresh interpreter has imported after running a snippet: for the tests that keep startup light."""

from __future__ import annotations

import json
import subprocess
import sys


def heavy_modules_loaded(code: str, heavy: tuple[str, ...]) -> list[str]:
    """Run ``code`` in a new interpreter; the loaded modules that are, or are inside, any of ``heavy``."""
    probe = (
        f"{code}\n"
        "import json, sys\n"
        f"heavy = {heavy!r}\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m.startswith(heavy))))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    names: list[str] = json.loads(loaded.stdout)
    return names
