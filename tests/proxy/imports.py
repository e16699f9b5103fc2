"""What a module imports, read from its source (no import side effects): for the purity tests."""

from __future__ import annotations

import ast
from pathlib import Path
from types import ModuleType


def imported_roots(module: ModuleType) -> set[str]:
    """The top-level package of every import in ``module``'s source (``from x.y import z`` -> ``x``)."""
    assert module.__file__ is not None
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    return {
        (node.module if isinstance(node, ast.ImportFrom) and node.module else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
