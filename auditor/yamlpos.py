"""YAML loading that remembers where every value came from, so config errors can name file:line:column."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from auditor.errors import ConfigError


@dataclass(frozen=True)
class Position:
    line: int  # 1-based
    column: int  # 1-based


class PositionMap:
    """Maps a path of keys/indexes (pydantic's ``loc``) to the position of that value or key in the file."""

    def __init__(self, root: yaml.Node | None) -> None:
        self._root = root

    def locate(self, loc: Sequence[str | int], *, key: bool = False) -> Position | None:
        """Position of the value at ``loc``; with ``key=True``, of the mapping key itself.

        When the path runs out (a missing key), the deepest node found is returned.
        """
        node = self._root
        found: yaml.Node | None = node
        key_node: yaml.Node | None = None
        for part in loc:
            if isinstance(node, yaml.MappingNode):
                nxt = None
                for k, v in node.value:
                    if isinstance(k, yaml.ScalarNode) and k.value == str(part):
                        key_node, nxt = k, v
                        break
                if nxt is None:
                    break
                node = found = nxt
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
                key_node = None
                node = found = node.value[part]
            else:
                break
        target = key_node if key and key_node is not None else found
        if target is None:
            return None
        return Position(target.start_mark.line + 1, target.start_mark.column + 1)


def load_yaml(text: str, path: str) -> tuple[Any, PositionMap]:
    """Parse YAML text, returning the data and a map of positions. Syntax errors become ConfigError."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise ConfigError(f"YAML syntax error: {exc.problem}", path=path,
                          line=mark.line + 1 if mark else None, column=mark.column + 1 if mark else None) from None
    return data, PositionMap(node)
