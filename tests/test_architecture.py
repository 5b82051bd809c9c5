"""The shape of the package: data flows one way, no import cycles, no module writes another's
private fields. These read the source (every import counts, those inside functions too)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "soundslike_nb"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> dict[str, ast.Module]:
    return {_module_name(path): ast.parse(path.read_text(), str(path))
            for path in sorted(PACKAGE.rglob("*.py"))}


def _packages() -> set[str]:
    return {_module_name(path) for path in PACKAGE.rglob("__init__.py")}


def _imports(module: str, tree: ast.Module, known: set[str]) -> set[str]:
    """Package modules ``module`` imports, wherever the import statement is."""
    package = module if module in _packages() else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        found.update(name for name in names if name in known)
    found.discard(module)
    return found


def _graph() -> dict[str, set[str]]:
    sources = _sources()
    known = set(sources)
    return {module: _imports(module, tree, known) for module, tree in sources.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for child in graph[node]:
            if child not in index:
                visit(child)
                low[node] = min(low[node], low[child])
            elif child in on_stack:
                low[node] = min(low[node], index[child])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_the_package_has_no_import_cycles():
    graph = _graph()
    assert graph["soundslike_nb.library"] >= {"soundslike_nb.analysis", "soundslike_nb.search"}
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_library_never_imports_the_app():
    graph = _graph()
    for module, imported in graph.items():
        if not module.startswith("soundslike_nb.app"):
            assert not {name for name in imported if name.startswith("soundslike_nb.app")}, module


#: Private fields a third-party protocol asks us to set: pyannote.audio's telemetry hook reads
#: ``_otel_origin``, which its own ``Model.from_pretrained`` sets the same way.
THIRD_PARTY_FIELDS = {"_otel_origin"}


def test_no_module_writes_another_objects_private_fields():
    offenders = []
    for module, tree in _sources().items():
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for element in (target.elts if isinstance(target, ast.Tuple) else [target]):
                    if (isinstance(element, ast.Attribute) and element.attr.startswith("_")
                            and not element.attr.startswith("__")
                            and element.attr not in THIRD_PARTY_FIELDS
                            and not (isinstance(element.value, ast.Name)
                                     and element.value.id in {"self", "cls"})):
                        offenders.append(f"{module}:{node.lineno} sets .{element.attr}")
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "setattr" and len(node.args) > 1
                    and isinstance(node.args[1], ast.Constant)
                    and str(node.args[1].value).startswith("_")):
                offenders.append(f"{module}:{node.lineno} setattr {node.args[1].value}")
    assert offenders == []
