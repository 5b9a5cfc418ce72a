"""The package's import graph keeps its layers (docs/INTERNALS.md, "Layers").

Read from the source with `ast`, so that a module imported only inside a
function counts too: it runs as soon as that function does.  Imports under
`if TYPE_CHECKING:` never run and are left out.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import ipsecgw

ROOT = Path(ipsecgw.__file__).parent
# Imported by everything, importing nothing of ipsecgw.
NEUTRAL = ("ipsecgw.netns", "ipsecgw.status")
# Defined in one module each; the others import them.
SHARED_CONSTANTS = ("DEFAULT_VR", "NETNS_RUN_DIR", "IKE_PORT", "NAT_T_PORT", "NON_ESP_MARKER")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in ROOT.rglob("*.py")}


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node except the bodies of `if TYPE_CHECKING:`."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                yield child
                yield from _runtime_nodes(child)
            continue
        yield node
        yield from _runtime_nodes(node)


def _owner(name: str) -> str | None:
    """The ipsecgw module that `name` (a module or a name inside one) lives in."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str) -> set[str]:
    """The ipsecgw modules `module` imports at run time (its own packages left out:
    they are already being imported when it runs)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            source = ".".join([*base, node.module] if node.module else base)
            if not node.level:
                source = str(node.module)
            found.update(f"{source}.{alias.name}" for alias in node.names)
    owners = {owner for name in found if (owner := _owner(name)) is not None}
    return {m for m in owners if m != module and not module.startswith(m + ".")}


GRAPH = {module: imports_of(module) for module in MODULES}


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_no_import_cycle() -> None:
    cycles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(GRAPH[module]):
            if state.get(target) == 1:
                cycles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_the_data_plane_imports_neither_daemon_nor_cli_nor_configuration() -> None:
    wrong = {(m, t) for m in GRAPH if _in(m, "ipsecgw.dataplane") for t in GRAPH[m]
             if any(_in(t, p) for p in ("ipsecgw.daemon", "ipsecgw.cli", "ipsecgw.config"))}
    assert wrong == set()


def test_the_engine_imports_only_itself_and_neutral_modules() -> None:
    wrong = {(m, t) for m in GRAPH if _in(m, "ipsecgw.isakmp") for t in GRAPH[m]
             if not _in(t, "ipsecgw.isakmp") and t not in NEUTRAL}
    assert wrong == set()


def test_neutral_modules_import_nothing_of_ipsecgw() -> None:
    assert {m: GRAPH[m] for m in NEUTRAL} == {m: set() for m in NEUTRAL}


def test_shared_constants_are_defined_once() -> None:
    definitions: dict[str, list[str]] = {name: [] for name in SHARED_CONSTANTS}
    for module, path in MODULES.items():
        for node in ast.parse(path.read_text()).body:
            targets = (node.targets if isinstance(node, ast.Assign)
                       else [node.target] if isinstance(node, ast.AnnAssign) else [])
            for target in targets:
                if isinstance(target, ast.Name) and target.id in definitions:
                    definitions[target.id].append(module)
    assert {name: len(where) for name, where in definitions.items()} == dict.fromkeys(
        SHARED_CONSTANTS, 1), definitions


def test_the_daemon_imports_at_module_top() -> None:
    """What the daemon depends on is visible at the top of each module, not
    hidden in functions (issue 12: it used to import the CLI lazily)."""
    hidden = []
    for module, path in MODULES.items():
        if not _in(module, "ipsecgw.daemon"):
            continue
        for function in ast.walk(ast.parse(path.read_text())):
            if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                hidden += [(module, function.name) for node in ast.walk(function)
                           if isinstance(node, ast.ImportFrom)
                           and (node.level or str(node.module).startswith("ipsecgw"))]
    assert hidden == []


def test_the_product_never_imports_the_tools() -> None:
    """Test bed, load generator and lab live in `ipsecgw.tools` (issue 12 item
    6): the daemon, engine, data plane, CLI and configuration never reach
    them, so the gateway's import graph is the gateway's alone.  The one
    door is `ipsecgw lab` in main.py, which loads the lab on demand."""
    entry = {"ipsecgw.main", "ipsecgw.__main__"}  # the `ipsecgw` command itself

    def reach(module: str, seen: set[str]) -> set[str]:
        for target in GRAPH[module] - seen - entry:
            seen.add(target)
            reach(target, seen)
        return seen

    wrong = {(m, t) for m in GRAPH if not _in(m, "ipsecgw.tools") and m not in entry
             for t in reach(m, set()) if _in(t, "ipsecgw.tools")}
    assert wrong == set()
    assert not any(_in(t, "ipsecgw.tools") for t in reach("ipsecgw.daemon.runtime", set()))
