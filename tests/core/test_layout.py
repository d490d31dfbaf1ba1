"""The core knows nothing of audio or images: no module under dlbench/ imports an audio or
image library or the built-in plugins, which reach it through the public hooks only."""

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "dlbench"
DOMAIN = {"librosa", "soundfile", "soxr", "pesq", "pystoi", "espeakng_loader", "dlbench_plugins"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", sorted(CORE.rglob("*.py")), ids=lambda p: str(p.relative_to(CORE)))
def test_core_module_imports_no_domain_library(path):
    roots = {name.split(".")[0] for name in imported_modules(path)}
    assert not roots & DOMAIN, f"{path.relative_to(CORE.parent)} imports {sorted(roots & DOMAIN)}"


def test_the_check_sees_imports_inside_functions(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    import soundfile\n    from dlbench_plugins.speech import x\n")
    assert {"soundfile", "dlbench_plugins.speech"} <= imported_modules(probe)
