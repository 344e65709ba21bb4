"""The project's layers point one way (DESIGN.md): scripts -> training -> library, and only the CLI reaches the Shapes world.

Reads every module's imports with `ast` (nothing is imported), so a violation names the file and the import.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "t2v"


def imports(path: Path) -> set[str]:
    """Absolute names of the t2v modules `path` imports, relative imports resolved."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1] if path.name != "__init__.py"
                       else path.relative_to(ROOT).parent.parts)
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)  # `from . import shapes`
    return {name for name in found if name == "t2v" or name.startswith("t2v.")}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_the_library_imports_neither_the_cli_nor_training_nor_the_shapes_world():
    allowed_shapes = {"t2v.cli"}  # `t2v data shapes`, `t2v eval shapes`, and a Shapes caption's storyboard
    wrong = []
    for path in sorted(LIBRARY.rglob("*.py")):
        name = module_name(path)
        for target in sorted(imports(path)):
            if within(target, "t2v.cli") and name != "t2v.cli":
                wrong.append(f"{name} imports {target}")
            if within(target, "t2v.training") and not within(name, "t2v.training"):
                wrong.append(f"{name} imports {target}")
            if within(target, "t2v.shapes") and not within(name, "t2v.shapes") and name not in allowed_shapes:
                wrong.append(f"{name} imports {target}")
    assert not wrong, "imports against the layers of DESIGN.md:\n" + "\n".join(wrong)


def test_the_general_machinery_does_not_know_the_shapes_world():
    """Not even by name: pipelines, FIFO, attention, schedulers, models, data and training never mention it."""
    general = ["pipelines", "attention", "schedulers", "models", "data", "training", "fifo.py", "video_io.py", "checks.py"]
    mentions = []
    for part in general:
        for path in [LIBRARY / part] if part.endswith(".py") else sorted((LIBRARY / part).rglob("*.py")):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if "t2v.shapes" in line or "from ..shapes" in line or "from .shapes" in line:
                    mentions.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not mentions, "\n".join(mentions)


def test_scripts_and_tests_do_not_edit_sys_path():
    """benchmarks/, research/, demos/, training/ and tests/ import the library as installed, and nothing from each other."""
    edits = []
    for folder in ("benchmarks", "research", "demos", "training", "tests"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path == Path(__file__).resolve():
                continue
            text = path.read_text()
            if "sys.path.insert" in text or "sys.path.append" in text or "syspath_prepend" in text:
                edits.append(str(path.relative_to(ROOT)))
    assert not edits, "these files edit sys.path: " + ", ".join(edits)
