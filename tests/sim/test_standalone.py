"""stripe_sim is its own package: it imports, runs and answers without tokenbank."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import stripe_sim

HERE = Path(__file__).parent


def test_importing_the_server_loads_nothing_from_tokenbank() -> None:
    code = (
        "import json, sys\n"
        "import stripe_sim, stripe_sim.__main__\n"
        "from stripe_sim import SimConfig, SimServer\n"
        "with SimServer(SimConfig()) as server:\n"
        "    import httpx\n"
        "    status = httpx.get(server.url + '/_sim/health').status_code\n"
        "print(json.dumps({'status': status,"
        " 'tokenbank': sorted(m for m in sys.modules if m.split('.')[0] == 'tokenbank')}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"status": 200, "tokenbank": []}


def test_help_names_the_top_level_module() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "stripe_sim", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "python -m stripe_sim" in out.stdout
    assert "--webhook-url" in out.stdout


def test_the_package_is_the_top_level_one() -> None:
    assert Path(stripe_sim.__file__).parent.name == "stripe_sim"
    assert Path(stripe_sim.__file__).parent.parent.name == "src"


def test_the_sim_tests_import_nothing_from_tokenbank() -> None:
    offenders = []
    for path in sorted(HERE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "tokenbank"]
    assert offenders == []
