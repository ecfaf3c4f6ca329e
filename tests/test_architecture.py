"""The shape of the code: no import cycles (lazy imports and modules named by string count),
no module over 300 lines, no function over 60, and no trainer or stage that branches on an objective's name.

Guards: src/deltapref/ (its layout), docs/DESIGN.md (its map), tests/ (Guards: lines)."""

import ast
from pathlib import Path

from deltapref.objectives import POLICY_OBJECTIVES, SCORER_OBJECTIVES

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "deltapref"


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports_of(name: str, path: Path, known: dict) -> set[str]:
    """Every deltapref module ``name`` imports anywhere in its body (or names as a string),
    with the packages a submodule import runs."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            targets |= {f"{module}.{a.name}" for a in node.names} | {module}
        elif isinstance(node, ast.Import):
            targets |= {a.name for a in node.names}
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in known:
            targets.add(node.value)
    closed = {".".join(t.split(".")[:i]) for t in targets for i in range(2, len(t.split(".")) + 1)}
    return {t for t in closed if t in known and t != name and not name.startswith(t + ".")}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles_between_modules_or_packages():
    known = modules()
    graph = {name: imports_of(name, path, known) for name, path in known.items()}
    assert cycles(graph) == []
    top = {name: ".".join(name.split(".")[:2]) for name in known}
    packages = {}
    for name, targets in graph.items():
        packages.setdefault(top[name], set()).update(top[t] for t in targets if top[t] != top[name])
    assert cycles(packages) == []


def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_over_300_lines():
    long = {name: n for name, path in modules().items() if (n := len(path.read_text().splitlines())) > 300}
    assert long == {}


def test_no_function_over_60_lines():
    import ast

    long = {
        f"{name}.{node.name}": node.end_lineno - node.lineno + 1
        for name, path in modules().items()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno + 1 > 60
    }
    assert long == {}


def test_trainers_and_stages_never_branch_on_an_objective_name():
    """Trainers, stages, scoring and scorer evaluation read what a kind does from its unit."""
    names = set(POLICY_OBJECTIVES) | set(SCORER_OBJECTIVES)
    files = [
        PACKAGE / "policy" / "trainer.py",
        PACKAGE / "policy" / "run.py",
        PACKAGE / "scorers" / "trainer.py",
        PACKAGE / "scorers" / "scoring.py",
        PACKAGE / "evaluation" / "scorer_eval.py",
        *sorted((PACKAGE / "stages").glob("*.py")),
    ]
    branches = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                constants = [c.value for c in ast.walk(node) if isinstance(c, ast.Constant)]
                branches += [f"{path.name}:{node.lineno} {c!r}" for c in constants if c in names]
    assert branches == []


def design_map() -> set[str]:
    """The paths listed in DESIGN.md's layout map (``docs/DESIGN.md``, section 2): an entry is a
    line indented by two spaces per level whose first word ends in ``.py`` or ``/``."""
    text = (PACKAGE.parents[1] / "docs" / "DESIGN.md").read_text()
    block = text.split("## 2. Layout", 1)[1].split("```", 2)[1]
    listed, parents = set(), []
    for line in block.splitlines()[2:]:
        indent = len(line) - len(line.lstrip())
        word = line.split()[0] if line.strip() else ""
        if indent % 2 or indent > 12 or not word.endswith((".py", "/")):
            continue
        parents = parents[: indent // 2 - 1] + [word]
        listed.add("".join(parents).rstrip("/"))
    return listed


def test_every_module_and_package_has_its_place_in_the_design_map():
    listed = design_map()
    files = {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if p.name != "__init__.py"}
    folders = {str(p.parent.relative_to(PACKAGE)) for p in PACKAGE.rglob("__init__.py") if p.parent != PACKAGE}
    assert files - listed == set(), "modules with no line in docs/DESIGN.md's map"
    assert folders - listed == set(), "packages with no line in docs/DESIGN.md's map"
    assert listed - files - folders - {"__init__.py"} == set(), "lines in the map naming no module"


def test_the_top_level_holds_the_public_faces_only():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 10, top
    undocumented = [
        p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file() and not _docstring(p / "__init__.py")
    ]
    assert undocumented == [], "every package's __init__ says what it holds"


def _docstring(path: Path) -> str | None:
    return ast.get_docstring(ast.parse(path.read_text()))


def guarded_by() -> dict[str, set[str]]:
    """Test file -> the paths its docstring's ``Guards:`` line names (modules and packages under
    ``src/deltapref``, or the repository's own paths)."""
    named = {}
    for path in sorted(PACKAGE.parents[1].joinpath("tests").glob("test_*.py")):
        doc = _docstring(path) or ""
        line = doc.split("Guards:", 1)[1] if "Guards:" in doc else ""
        words = [w.split(" (")[0].strip().rstrip(".") for w in " ".join(line.split()).split(", ")]
        named[path.name] = {w for w in words if w.endswith((".py", "/"))}
    return named


def test_every_test_file_names_what_it_guards_and_every_module_is_guarded():
    """A contributor changing a module finds its tests: ``grep "Guards:.*checkpoints.py" tests``."""
    named = guarded_by()
    root = PACKAGE.parents[1]
    assert [name for name, paths in named.items() if not paths] == [], "test files without a Guards: line"
    missing = {
        (n, p) for n, paths in named.items() for p in paths if not (PACKAGE / p).exists() and not (root / p).exists()
    }
    assert missing == set(), "Guards: lines naming paths that do not exist"
    guarded = set().union(*named.values())
    modules = {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if p.name != "__init__.py"}
    unguarded = {
        m for m in modules if m not in guarded and not any(m.startswith(g) for g in guarded if g.endswith("/"))
    }
    assert unguarded == set(), "modules no test file's Guards: line names"


def test_no_two_public_classes_differ_by_one_letter():
    """``ScoreOptions`` beside ``ScorerOptions`` named two concepts alike; one name per concept
    (a letter in front is a different name: DPO and EDPO are two papers' methods)."""
    names = {
        node.name
        for path in modules().values()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_")
    }
    close = sorted((a, b) for a in names for b in names if a < b and len(a) != len(b) and _one_letter_apart(a, b))
    assert close == []


def _one_letter_apart(a: str, b: str) -> bool:
    short, long = sorted((a, b), key=len)
    return len(long) == len(short) + 1 and any(long[:i] + long[i + 1 :] == short for i in range(1, len(long)))
