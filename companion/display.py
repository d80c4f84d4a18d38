"""Notebook display helpers: show companion source code instead of pasting it."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from IPython.display import Code


def show_source(*objects: Callable[..., Any] | type) -> Code:
    """Syntax-highlighted source of companion functions or classes, for a notebook cell."""
    if not objects:
        raise ValueError("show_source needs at least one function or class")
    parts = []
    for obj in objects:
        module = inspect.getmodule(obj)
        name = f"{module.__name__}.{obj.__qualname__}" if module else obj.__qualname__
        parts.append(f"# {name}\n{inspect.getsource(obj)}")
    return Code("\n\n".join(parts), language="python")
