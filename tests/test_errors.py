"""The error tree drawn in jobfallback/errors.py is the package's: every exception class, under
its real parent, in the module the drawing names."""

from __future__ import annotations

import builtins
import importlib
import pkgutil
import re
from dataclasses import dataclass

import jobfallback
from jobfallback import errors

# A node of the drawing: `+-- Name` at four columns per level, then `(module)` when the class
# lives elsewhere than its parent (the top level: jobfallback.errors).
_NODE = re.compile(r"^(?P<indent>[ |]*)(?:\+-- )?(?P<name>\w+)(?:\s+\((?P<module>[\w.]+)\))?")
_INDENT = 4  # the docstring's own indentation of the drawing


@dataclass(frozen=True)
class Node:
    parent: str | None
    module: str | None  # jobfallback.<module>; None for a builtin exception


def drawn_tree() -> dict[str, Node]:
    assert errors.__doc__ is not None
    lines = errors.__doc__.split("\n    Exception\n", 1)[1].split("\n\n", 1)[0].splitlines()
    nodes = {"Exception": Node(parent=None, module=None)}
    path = ["Exception"]  # the last node drawn at each depth
    for line in lines:
        match = _NODE.match(line)
        assert match is not None, line
        depth = (match.end("indent") + len("+-- ") - _INDENT) // 4
        name, parent = match["name"], path[depth - 1]
        if hasattr(builtins, name):
            module = None
        elif match["module"]:
            module = f"jobfallback.{match['module']}"
        else:
            module = nodes[parent].module or errors.__name__
        assert name not in nodes, f"{name} is drawn twice"
        nodes[name] = Node(parent, module)
        path[depth:] = [name]
    return nodes


def package_exceptions() -> dict[str, type[BaseException]]:
    """Every exception class defined in a jobfallback module, by name."""
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(jobfallback.__path__, prefix="jobfallback."):
        if info.name.endswith(".__main__"):  # runs the CLI when imported; defines no class
            continue
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
            ):
                assert found.setdefault(value.__name__, value) is value, value.__name__
    return found


def test_every_exception_of_the_package_is_drawn_under_its_parent() -> None:
    tree = drawn_tree()
    for name, cls in package_exceptions().items():
        assert name in tree, f"{cls.__module__}.{name} is missing from errors.py's tree"
        assert len(cls.__bases__) == 1, f"{name} has several bases: draw it by hand"
        assert (tree[name].parent, tree[name].module) == (cls.__base__.__name__, cls.__module__)


def test_the_tree_draws_no_class_that_is_gone() -> None:
    defined = package_exceptions()
    gone = [name for name, node in drawn_tree().items() if node.module and name not in defined]
    assert gone == []
