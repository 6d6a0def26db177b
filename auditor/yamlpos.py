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


# libyaml's parser when PyYAML was built with it: ten times faster than the Python one, the same nodes and marks.
_COMPOSER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# A config is a page or two of settings, a long one a few hundred exceptions. These bounds are far above any
# real config and far below what hangs the loader: anchors and aliases (&a, *a) let a few lines stand for
# billions of values ("billion laughs"), which every later walk over the data would visit one by one.
MAX_VALUES = 100_000  # values (scalars, lists, mappings) after aliases are expanded
MAX_DEPTH = 64  # mappings and lists nested in one another


def load_yaml(text: str, path: str) -> tuple[Any, PositionMap]:
    """Parse YAML text, returning the data and a map of positions. Syntax errors, a key given twice in one
    mapping, and a document that expands past :data:`MAX_VALUES` or nests past :data:`MAX_DEPTH` become
    ConfigError."""
    try:
        node = yaml.compose(text, Loader=_COMPOSER)
        if node is not None:
            _check_node(node, path)
        # Built from the nodes just checked: parsing the text a second time doubled the load time.
        data = yaml.SafeLoader("").construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise ConfigError(f"YAML syntax error: {exc.problem}", path=path,
                          line=mark.line + 1 if mark else None, column=mark.column + 1 if mark else None) from None
    except RecursionError:
        raise ConfigError(f"the YAML nests deeper than {MAX_DEPTH} levels; a config never needs that", path=path,
                          line=1, column=1) from None
    return data, PositionMap(node)


def _check_node(root: yaml.Node, path: str) -> None:
    """Refuse duplicate keys, runaway alias expansion and deep nesting, walking each node once (an alias is the
    same node object as its anchor, so the expanded size is summed, not walked)."""
    sizes: dict[int, int] = {}
    # Iterative post-order walk: (node, depth, children done?).
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, done = stack.pop()
        if id(node) in sizes:
            continue
        if depth > MAX_DEPTH:
            raise ConfigError(f"the YAML nests deeper than {MAX_DEPTH} levels; a config never needs that", path=path,
                              line=node.start_mark.line + 1, column=node.start_mark.column + 1)
        children = _children(node)
        if not done:
            if isinstance(node, yaml.MappingNode):
                _check_keys(node, path)
            stack.append((node, depth, True))
            stack.extend((child, depth + 1, False) for child in children if id(child) not in sizes)
            continue
        total = 1 + sum(sizes.get(id(child), 0) for child in children)
        if total > MAX_VALUES:
            raise ConfigError(f"the YAML expands to more than {MAX_VALUES:,} values through its anchors and aliases "
                              "(&name, *name); a config needs nowhere near that. Write the values out, or remove the "
                              "nested aliases", path=path, line=node.start_mark.line + 1,
                              column=node.start_mark.column + 1)
        sizes[id(node)] = total


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_keys(node: yaml.MappingNode, path: str) -> None:
    """A key given twice in one mapping: YAML would keep the last one in silence (an exception whose ``match``
    repeats ``dstport`` would then match something else)."""
    seen: dict[str, yaml.Node] = {}
    for key, _ in node.value:
        if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
            continue
        if key.value in seen:
            first = seen[key.value].start_mark
            raise ConfigError(f"duplicate key '{key.value}' (first at line {first.line + 1}, column "
                              f"{first.column + 1}); a mapping holds each key once, and YAML would silently keep only "
                              "the last one. Remove or merge one of them", path=path, line=key.start_mark.line + 1,
                              column=key.start_mark.column + 1)
        seen[key.value] = key
