"""The architecture, checked: an AST walk over every import of the project (module level, inside functions
and under TYPE_CHECKING) keeps the arrows one way.

    foundation  curation.{models, db, settings, errors, retry, lookup, process, icons, migrations}
       ^
    access      curation.access            (roles, accounts, audit)
       ^
    domain      curation.{data, review, agreement, embeddings, versions}
       ^
    cli         curation.cli               (other packages register commands; curation never imports them)
       ^
    training -> curation          ui -> curation, training          pages, app.py -> ui, curation, training

Nothing in curation or training imports Streamlit; pages import neither sqlalchemy nor curation.db; there is
no import cycle between project modules; imports inside functions are only those in FUNCTION_LEVEL_ALLOWED
(an allow-list that only shrinks); and the README's layout block names every package.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import REPO

PROJECT = ("curation", "training", "ui", "pages", "app")
SCANNED = ["curation", "training", "ui", "pages", "app.py"]

FOUNDATION = {"curation", "curation.models", "curation.db", "curation.settings", "curation.errors",
              "curation.retry", "curation.lookup", "curation.process", "curation.icons", "curation.migrations"}
DOMAIN = ("curation.data", "curation.review", "curation.agreement", "curation.embeddings", "curation.versions",
          "curation.evaluation")

# Project imports inside functions (importer, imported). Each one is a reason to look twice: a heavy or
# optional dependency loaded late is fine, a hidden cycle is not (test_no_import_cycles sees these too).
# Remove an entry when its import moves to the top of the module; never add one to hide a cycle.
FUNCTION_LEVEL_ALLOWED: set[tuple[str, str]] = {
    ("curation.cli.accounts", "curation.access.accounts"),
    ("curation.cli.embeddings", "curation.embeddings.dedup"),
    ("curation.cli.embeddings", "curation.embeddings.quality"),
    ("curation.cli.embeddings", "curation.embeddings.splits"),
    ("curation.cli.review", "curation.agreement.report"),
    ("curation.cli.review", "curation.review.adjudication"),
    ("curation.cli.review", "curation.review.queue"),
    ("curation.data.projects", "curation.review.annotate"),
    ("curation.embeddings.dedup", "curation.access.roles"),
    ("curation.embeddings.dedup", "curation.db"),
    ("curation.embeddings.dedup", "curation.errors"),
    ("curation.embeddings.dedup", "curation.models"),
    ("curation.embeddings.dedup", "curation.review.adjudication"),
    ("curation.embeddings.diversity", "curation.db"),
    ("curation.embeddings.diversity", "curation.models"),
    ("curation.embeddings.encode", "curation.db"),
    ("curation.embeddings.encode", "curation.models"),
    ("curation.embeddings.jobs", "curation.embeddings.encode"),
    ("curation.embeddings.quality", "curation.access.roles"),
    ("curation.embeddings.splits", "curation.access.audit"),
    ("curation.embeddings.splits", "curation.access.roles"),
    ("curation.embeddings.splits", "curation.models"),
    ("curation.embeddings.splits", "curation.retry"),
    ("curation.migrations.env", "curation.db"),
    ("curation.versions.export", "curation.versions.card"),
    ("pages.playground", "training.models"),
    ("training.config", "curation.embeddings.encode"),
    ("training.eval_run", "training.data"),  # torch/transformers, loaded only when a run is scored
    ("training.eval_run", "training.evaluate"),
    ("training.eval_run", "training.models"),
    ("training.evaluate", "training.data"),
    ("training.jobs", "curation.access.audit"),
    ("training.jobs", "curation.versions.records"),
    ("training.jobs", "training.config"),
    ("training.jobs", "training.models"),
    ("training.models", "curation.settings"),
    ("training.preference_job", "training.evaluate"),  # torch/transformers, loaded only by the worker
    ("training.preference_job", "training.models"),
    ("training.preflight", "curation.versions.records"),
    ("training.preflight", "training.config"),
    ("training.preflight", "training.data"),
    ("training.preflight", "training.models"),
    ("training.run", "curation.versions.records"),
    ("training.run", "training.card"),
    ("training.run", "training.config"),
    ("training.run", "training.data"),
    ("training.run", "training.evaluate"),
    ("training.run", "training.models"),
    ("ui.training", "ui.session"),
}

# Pages that import the database layer: none (issue 14 moved pages/browse.py's query into the core, and the
# Test set page's pick-by-id query is curation.versions.test_sets.add_items_by_external_id); it stays empty.
PAGES_WITH_SQL_ALLOWED: set[str] = set()


@dataclass(frozen=True)
class Import:
    importer: str  # dotted module name of the file
    imported: str  # dotted name of the imported module (a project module resolved to the longest match)
    line: int
    function_level: bool


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_files(root: Path = REPO) -> Iterator[Path]:
    for entry in SCANNED:
        path = root / entry
        if path.is_file():
            yield path
        else:
            yield from sorted(p for p in path.rglob("*.py") if "migrations/versions" not in p.as_posix())


def known_modules(files: list[Path]) -> set[str]:
    return {module_name(p) for p in files}


def resolve(name: str, modules: set[str]) -> str:
    """The project module an import names: `curation.review.rules.X` -> `curation.review.rules`."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        candidate = ".".join(parts[:cut])
        if candidate in modules:
            return candidate
    return name


def imports_in(text: str, importer: str, modules: set[str]) -> list[Import]:
    """Every import in module `importer`'s source, module level or not, `from package import module`
    resolved to the module."""
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    found.append(Import(importer, resolve(alias.name, modules), child.lineno, in_function))
            elif isinstance(child, ast.ImportFrom) and child.module and not child.level:
                for alias in child.names:
                    target = resolve(f"{child.module}.{alias.name}", modules)
                    if target not in modules:
                        target = resolve(child.module, modules)
                    found.append(Import(importer, target, child.lineno, in_function))
            visit(child, inner)

    visit(ast.parse(text), False)
    return found


def imports_of(path: Path, modules: set[str]) -> list[Import]:
    return imports_in(path.read_text(encoding="utf-8"), module_name(path), modules)


def all_imports(root: Path = REPO) -> list[Import]:
    files = list(project_files(root))
    modules = known_modules(files)
    return [imp for path in files for imp in imports_of(path, modules)]


def top(name: str) -> str:
    return name.split(".")[0]


def in_package(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def layer(name: str) -> int | None:
    """0 foundation, 1 access, 2 domain, 3 cli; None outside curation (or curation.demo's generator)."""
    if not in_package(name, "curation") or in_package(name, "curation.demo"):
        return None
    if name in FOUNDATION or in_package(name, "curation.migrations"):
        return 0
    if in_package(name, "curation.access"):
        return 1
    if any(in_package(name, package) for package in DOMAIN):
        return 2
    if in_package(name, "curation.cli") or name == "curation.__main__":
        return 3
    raise AssertionError(f"{name} is in no layer: add it to a subpackage or to FOUNDATION in tests/test_layers.py")


def layer_violations(imports: list[Import]) -> list[str]:
    problems = []
    for imp in imports:
        source, target = imp.importer, imp.imported
        where = f"{source}:{imp.line} imports {target}"
        if top(source) in ("curation", "training") and top(target) == "streamlit":
            problems.append(f"{where}: the core and training never import Streamlit")
        if top(source) == "curation" and top(target) in ("training", "ui", "pages", "app"):
            problems.append(f"{where}: curation never imports {top(target)}")
        if top(source) == "training" and top(target) in ("ui", "pages", "app"):
            problems.append(f"{where}: training never imports {top(target)}")
        if top(source) == "ui" and top(target) in ("pages", "app"):
            problems.append(f"{where}: ui never imports {top(target)}")
        if top(source) == "pages" and (top(target) == "sqlalchemy" or target == "curation.db") \
                and source not in PAGES_WITH_SQL_ALLOWED:
            problems.append(f"{where}: pages read widgets, call the core and render (no SQL)")
        low, high = layer(source), layer(target)
        if low is not None and high is not None and high > low:
            problems.append(f"{where}: layer {low} may not import layer {high} "
                            "(foundation <- access <- domain <- cli)")
    return problems


def cycles(imports: list[Import]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    graph: dict[str, set[str]] = defaultdict(set)
    for imp in imports:
        if top(imp.imported) in PROJECT and imp.imported != imp.importer:
            graph[imp.importer].add(imp.imported)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = [0]

    def strongconnect(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for successor in graph.get(node, ()):
            if successor not in index:
                strongconnect(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            strongconnect(node)
    return components


def function_level(imports: list[Import]) -> set[tuple[str, str]]:
    return {(imp.importer, imp.imported) for imp in imports
            if imp.function_level and top(imp.imported) in PROJECT and imp.importer != imp.imported}


# --------------------------------------------------------------------------- the checks
IMPORTS = all_imports()


def test_every_arrow_points_one_way() -> None:
    problems = layer_violations(IMPORTS)
    assert not problems, "\n".join(problems)


def test_no_import_cycles_including_imports_inside_functions() -> None:
    found = cycles(IMPORTS)
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_function_level_imports_only_shrink() -> None:
    actual = function_level(IMPORTS)
    new = sorted(actual - FUNCTION_LEVEL_ALLOWED)
    gone = sorted(FUNCTION_LEVEL_ALLOWED - actual)
    assert not new, f"new imports inside functions (move them to the top of the module): {new}"
    assert not gone, f"these no longer happen: remove them from FUNCTION_LEVEL_ALLOWED: {gone}"


def test_pages_with_sql_allow_list_only_shrinks() -> None:
    with_sql = {imp.importer for imp in IMPORTS if top(imp.importer) == "pages"
                and (top(imp.imported) == "sqlalchemy" or imp.imported == "curation.db")}
    assert with_sql <= PAGES_WITH_SQL_ALLOWED
    assert not PAGES_WITH_SQL_ALLOWED - with_sql, \
        f"remove {sorted(PAGES_WITH_SQL_ALLOWED - with_sql)} from PAGES_WITH_SQL_ALLOWED"


def test_every_module_of_the_core_is_in_a_layer() -> None:
    for path in project_files():
        layer(module_name(path))  # raises for a module outside the map


def test_readme_layout_names_every_package() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    development = readme.split("## Development", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```\n(.*?)```", development, re.S)
    assert block, "README's Development section has no layout block"
    layout = block.group(1)
    packages = sorted({p.parent.relative_to(REPO).as_posix() for p in REPO.glob("*/__init__.py")}
                      | {p.parent.relative_to(REPO).as_posix() for p in REPO.glob("curation/*/__init__.py")}
                      | {"pages", "tests", "bench"})
    missing = [name for name in packages
               if not re.search(rf"(^|[\s/]){re.escape(name.rsplit('/', 1)[-1])}/", layout, re.M)]
    assert not missing, f"README's layout block does not name {missing}"


# --------------------------------------------------------------------------- the checker checks itself
def _plant(tmp_path: Path, files: dict[str, str]) -> list[Import]:
    """The imports of a small planted tree (paths relative to a fake repository root)."""
    def name(path: str) -> str:
        return path.removesuffix(".py").replace("/", ".").removesuffix(".__init__")

    modules = {name(path) for path in files}
    return [imp for path, text in files.items() for imp in imports_in(text, name(path), modules)]


def test_a_cycle_through_a_function_level_import_is_found(tmp_path: Path) -> None:
    planted = _plant(tmp_path, {
        "curation/__init__.py": "",
        "curation/review/__init__.py": "",
        "curation/review/queue.py": "from curation.review import rules\n",
        "curation/review/rules.py": "def f():\n    from curation.review.queue import next_item\n",
    })
    assert cycles(planted) == [["curation.review.queue", "curation.review.rules"]]


def test_a_page_importing_the_database_or_a_core_importing_streamlit_is_found(tmp_path: Path) -> None:
    planted = _plant(tmp_path, {
        "curation/__init__.py": "",
        "curation/db.py": "",
        "curation/data/__init__.py": "",
        "curation/data/browse.py": "import streamlit as st\nfrom curation.cli import main\n",
        "curation/cli/__init__.py": "",
        "curation/cli/main.py": "from training import cli\n",
        "pages/agreement.py": "from curation.db import read_session\nfrom sqlalchemy import select\n",
    })
    problems = "\n".join(layer_violations(planted))
    assert "pages.agreement:1 imports curation.db: pages read widgets" in problems
    assert "pages.agreement:2 imports sqlalchemy" in problems
    assert "curation.data.browse:1 imports streamlit" in problems
    assert "curation.data.browse:2 imports curation.cli.main: layer 2 may not import layer 3" in problems
    assert "curation.cli.main:1 imports training: curation never imports training" in problems
