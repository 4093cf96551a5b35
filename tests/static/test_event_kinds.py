"""Every event kind Tsunagu writes itself is one a site's snippet may not send.

The snippet's events are refused by kind (tsunagu.event_kinds.SERVER_EVENT_KINDS): a kind the
server writes and that set leaves out is one a browser can forge - a CRM deal, a form
submission, a consent change. The check reads the code: each ``LeadEvent(...)`` the deployed
code builds, and the kind it is given, followed back to its literals (a constant, a helper's
argument at every call, a local chosen between constants).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tsunagu.event_kinds import SERVER_EVENT_KINDS

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "layers" / "tsunagu" / "tsunagu"

NOT_THE_SERVERS = {
    ("tracking/browser.py", "event.type"): "the browser's own event, refused by kind before",
    ("store/converters.py", "item.type"): "an event read back from the table",
    ("commands/leads.py", "kind"): (
        "an offline event recorded by hand (a seminar's attendee list), checked against"
        " OBSERVED_EVENT_KINDS there"
    ),
}
"""LeadEvents whose kind is not the server's choice, each with why (module, kind expression)."""


@dataclass
class Module:
    path: Path
    tree: ast.Module
    constants: dict[str, str] = field(default_factory=dict)
    imported: dict[str, tuple[str, str]] = field(default_factory=dict)
    parents: dict[ast.AST, ast.AST] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.relative_to(PACKAGE).as_posix()


def load(path: Path) -> Module:
    module = Module(path, ast.parse(path.read_text("utf-8")))
    for node in module.tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name) and isinstance(node.value.value, str):
                    module.constants[target.id] = node.value.value
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tsunagu"):
            for alias in node.names:
                module.imported[alias.asname or alias.name] = (str(node.module), alias.name)
    for parent in ast.walk(module.tree):
        for child in ast.iter_child_nodes(parent):
            module.parents[child] = parent
    return module


class Kinds:
    """The event kinds an expression can be, as far as the code says."""

    def __init__(self, modules: dict[str, Module]) -> None:
        self.modules = modules
        self.problems: list[str] = []

    def constant(self, module: Module, name: str) -> str | None:
        if name in module.constants:
            return module.constants[name]
        if name in module.imported:
            source, original = module.imported[name]
            other = self.modules.get(source.replace(".", "/").removeprefix("tsunagu/") + ".py")
            return None if other is None else self.constant(other, original)
        return None

    def of(self, module: Module, node: ast.expr, depth: int = 0) -> set[str]:
        if depth > 4:
            self.problems.append(f"{module.name}:{node.lineno}: {ast.unparse(node)} too deep")
            return set()
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return {node.value}
        if isinstance(node, ast.IfExp):
            return self.of(module, node.body, depth) | self.of(module, node.orelse, depth)
        if isinstance(node, ast.Dict):
            return set().union(*(self.of(module, v, depth) for v in node.values))
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and isinstance(node.func.value, ast.Dict)
        ):
            return self.of(module, node.func.value, depth)
        if isinstance(node, ast.Name):
            value = self.constant(module, node.id)
            if value is not None:
                return {value}
            function = self.enclosing(module, node)
            if function is not None:
                assigned = [
                    n.value
                    for n in ast.walk(function)
                    if isinstance(n, ast.Assign)
                    and any(isinstance(t, ast.Name) and t.id == node.id for t in n.targets)
                ]
                if assigned:
                    return set().union(*(self.of(module, v, depth + 1) for v in assigned))
                names = [a.arg for a in (*function.args.posonlyargs, *function.args.args)]
                if node.id in names or node.id in [a.arg for a in function.args.kwonlyargs]:
                    return self.arguments(module, function, node.id, depth + 1)
        self.problems.append(f"{module.name}:{node.lineno}: cannot follow {ast.unparse(node)}")
        return set()

    def enclosing(
        self, module: Module, node: ast.AST
    ) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
        while node in module.parents:
            node = module.parents[node]
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                return node
        return None

    def arguments(
        self,
        module: Module,
        function: ast.FunctionDef | ast.AsyncFunctionDef,
        parameter: str,
        depth: int,
    ) -> set[str]:
        """What every call of ``function`` in its module passes as ``parameter``."""
        positional = [a.arg for a in (*function.args.posonlyargs, *function.args.args)]
        found: set[str] = set()
        calls = 0
        for call in ast.walk(module.tree):
            if not isinstance(call, ast.Call):
                continue
            callee = call.func
            name = callee.id if isinstance(callee, ast.Name) else None
            if name != function.name:
                continue
            calls += 1
            given = [k.value for k in call.keywords if k.arg == parameter]
            if not given and parameter in positional:
                index = positional.index(parameter)
                given = call.args[index : index + 1]
            for value in given:
                found |= self.of(module, value, depth)
        if calls == 0:
            self.problems.append(f"{module.name}: {function.name} is never called with a kind")
        return found


def lead_events(module: Module) -> Iterator[ast.expr]:
    """The kind given to each LeadEvent(...) the module builds."""
    for node in ast.walk(module.tree):
        if not isinstance(node, ast.Call):
            continue
        callee = node.func
        name = callee.id if isinstance(callee, ast.Name) else getattr(callee, "attr", None)
        if name != "LeadEvent":
            continue
        kind = next((k.value for k in node.keywords if k.arg == "type"), None)
        if kind is None and len(node.args) > 1:
            kind = node.args[1]
        assert kind is not None, f"{module.name}:{node.lineno}: a LeadEvent without a kind"
        yield kind


def server_written_kinds() -> tuple[dict[str, set[str]], list[str]]:
    """Each kind the server writes, with where; and what the check could not follow."""
    modules = {m.name: m for m in map(load, sorted(PACKAGE.rglob("*.py")))}
    kinds = Kinds(modules)
    written: dict[str, set[str]] = {}
    for module in modules.values():
        for kind in lead_events(module):
            if (module.name, ast.unparse(kind)) in NOT_THE_SERVERS:
                continue
            for value in kinds.of(module, kind):
                written.setdefault(value, set()).add(f"{module.name}:{kind.lineno}")
    return written, kinds.problems


def test_a_browser_may_send_no_kind_the_server_writes() -> None:
    # Given every kind the deployed code writes as its own
    written, unfollowed = server_written_kinds()
    assert unfollowed == []
    # (the check sees the kinds written through helpers and constants, and the CRM's deals)
    assert {"mail_sent", "mail_bounced", "score_changed", "deal_changed"} <= set(written)
    assert {"form_submitted", "mail_opened", "link_clicked", "journey_decision"} <= set(written)

    # Then each is one the snippet is refused
    forgeable = {kind: sorted(where) for kind, where in written.items()}
    assert {k: w for k, w in forgeable.items() if k not in SERVER_EVENT_KINDS} == {}


def test_the_exceptions_are_still_in_the_code() -> None:
    # An exception that no longer matches a LeadEvent would silently excuse a new one there
    modules = {m.name: m for m in map(load, sorted(PACKAGE.rglob("*.py")))}
    present = {
        (name, ast.unparse(kind))
        for name, module in modules.items()
        for kind in lead_events(module)
    }
    assert set(NOT_THE_SERVERS) <= present
