"""Table layout for the report: bounded rows, cells as text with a kind, and column widths that fit a portrait
or a landscape A4 page (the PDF prints from the same HTML)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from auditor import formatting as fmt
from auditor.models import utc
from auditor.render.model import Cell, Column, Table

MAX_CELL_CHARS = 240  # a cell longer than this (a policy document, a long user agent) is cut; the CSV has it whole


def table(columns: Sequence[str], rows: Sequence[Mapping[str, Any]], key: Sequence[str], limit: int,
           note: Callable[[int, int], str]) -> Table:
    shown = rows[:limit]
    total = len(rows)
    cells = tuple(tuple(cell(row.get(c), c, row) for c in columns) for row in shown)
    natural = _natural_widths(columns, cells)
    wide = sum(n for n, _ in natural) > _PORTRAIT_CHARS
    dense = sum(f for _, f in natural) > _LANDSCAPE_CHARS
    page = int(_LANDSCAPE_CHARS * _DENSE_SCALE) if dense else _LANDSCAPE_CHARS if wide else _PORTRAIT_CHARS
    widths = _column_widths(natural, page)
    return Table(
        columns=tuple(Column(header(c), c in key, w, _numeric(cells, i)) for i, (c, w) in enumerate(zip(columns, widths))),
        rows=cells,
        total=total,
        truncated=total > len(shown),
        note=note(len(shown), total) if total > len(shown) else "",
        wide=wide,
        dense=dense,
    )


# Widths are counted in characters of the table font (7.5 pt): an A4 page less its margins holds
# about 110 of them upright and 165 on its side. A cell's padding costs about 2.
_PORTRAIT_CHARS = 110


_LANDSCAPE_CHARS = 165


_CELL_PADDING = 2


_SHORT_COLUMN = 18  # headers longer than this may wrap


_WORD_CAP = 26  # a value without spaces up to this long (IDs, addresses, timestamps) is never broken


_BREAKABLE_FLOOR = 10  # the least a column of longer words (ARNs, user agents) gets; they break anyway


_LONG_CAP = 50  # past this, a long column's share stops growing: it wraps instead


_DENSE_SCALE = 7.5 / 6.5  # a table too wide even on its side prints at 6.5 pt instead of 7.5 pt


def _numeric(cells: Sequence[Sequence[Cell]], i: int) -> bool:
    kinds = {row[i].kind for row in cells} - {"null"}
    return kinds == {"num"}


def _natural_widths(columns: Sequence[str], cells: Sequence[Sequence[Cell]]) -> list[tuple[float, float]]:
    """Per column, in characters: the width it would like (its longest value or its header), and the
    least it should get: its longest word when every word is short (IDs, addresses, times, which
    should never break), else a small floor, since long words (and JSON) break anyway."""
    out = []
    for i, name in enumerate(columns):
        texts = [row[i].text for row in cells]
        longest = max((_chars(t) for t in texts), default=0)
        word = max((_chars(w) for t in texts for w in t.split()), default=0)
        # A header wraps only between its words, never inside one: its longest word is the least it gets.
        header_word = max((len(w) for w in header(name).split()), default=1) * 1.1  # bold text is ~10% wider
        head = max(min(len(name), _SHORT_COLUMN) * 1.1, header_word)
        natural = max(head, longest, 2) + _CELL_PADDING
        atomic = word <= _WORD_CAP and not any(row[i].kind == "json" for row in cells)
        floor = min(natural, max(header_word, word if atomic else _BREAKABLE_FLOOR, 2) + _CELL_PADDING)
        out.append((natural, floor))
    return out


def _chars(text: str) -> float:
    # A digit is about 15% wider than the average character of DejaVu Sans (0.64 em against 0.55):
    # without this, a 12-digit account ID breaks in a column sized for 12 characters.
    return len(text) + 0.15 * sum(c.isdigit() for c in text)


def _column_widths(widths: Sequence[tuple[float, float]], page: int) -> tuple[str, ...]:
    """Column widths as percentages of the table.

    The tables use fixed layout: WeasyPrint's automatic layout measures the narrowest possible width
    of every cell, which with long unbreakable values (ARNs, user agents) made a 300-row report take
    30 s. Every column first gets its floor (its longest word, capped), so IDs, addresses and times
    never break mid-word, which also spares WeasyPrint many retries at breaking lines; long columns
    then share what is left, and wrap at spaces.
    """
    if not widths:
        return ()
    natural = [n for n, _ in widths]
    floors = [f for _, f in widths]
    if sum(natural) <= page:
        chosen = natural
    elif sum(floors) <= page:
        growth = [max(min(n, _LONG_CAP) - f, 0.0) for n, f in widths]
        share = min(1.0, (page - sum(floors)) / sum(growth)) if sum(growth) else 0.0
        chosen = [f + g * share for f, g in zip(floors, growth)]
    else:  # too many columns to keep every word whole
        chosen = floors
    total = sum(chosen)
    return tuple(f"{100 * w / total:.2f}%" for w in chosen)


def header(column: str) -> str:
    """A column's header as words: ``distinct_dstports`` reads ``distinct dstports`` and wraps between words."""
    return column.replace("_", " ")


CUT_COLUMNS = {"user_agent": 48, "actor": 60}  # long values cut in the table; the CSV keeps them whole


def cell(value: Any, column: str = "", row: Mapping[str, Any] | None = None) -> Cell:
    """One value as a table shows it, in words: booleans yes/no, protocols by name, ports with their service,
    bytes as sizes, lists and rule sets as short text (never JSON), actors by their short name and user agents
    by family. ``column`` and ``row`` say what the value is (a ``dstport`` is named with the row's protocol)."""
    row = row or {}
    if value is None:
        return Cell("\u2014", "null")
    if isinstance(value, bool):
        return Cell(fmt.yes_no(value), "text")
    if column == "protocol" and isinstance(value, int):
        return Cell(fmt.protocol(value), "text")
    if column == "dstport" and isinstance(value, int):
        return Cell(fmt.service(value, row.get("protocol", 6)), "text")
    if column in ("from_port", "to_port") and value == -1:
        return Cell("all", "text")
    if column in ("bytes", "bytes_scanned") and isinstance(value, int):
        return Cell(fmt.size(value), "num")
    if column == "actor" and isinstance(value, str):
        return _cut(f"{fmt.actor(value)}", "text", CUT_COLUMNS["actor"], len(value))
    if column == "user_agent" and isinstance(value, str):
        return _cut(f"{fmt.agent(value)}: {value}", "text", CUT_COLUMNS["user_agent"], len(value))
    if column == "source" and row.get("group_id") is not None and value == row.get("group_id"):
        return Cell(f"{value} (its own group)", "text")
    if isinstance(value, int):
        # No thousands separators: most integers in these tables are ports, protocol numbers and IDs.
        return Cell(str(value), "num")
    if isinstance(value, (float, Decimal)):
        return Cell(fmt.number(value), "num")
    if isinstance(value, datetime):
        return Cell(utc(value).strftime("%Y-%m-%d %H:%M:%SZ"), "text")
    if isinstance(value, date):
        return Cell(value.isoformat(), "text")
    if isinstance(value, str) and value[:1] in ("[", "{") and value[-1:] in ("]", "}"):
        try:
            value = json.loads(value)
        except ValueError:
            pass
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, Mapping) for v in value):
        if column == "rules" or any("protocol" in v for v in value):
            return _cut(fmt.rules(value, row.get("group_id")), "text")
    if isinstance(value, (list, tuple, dict, set, frozenset, Mapping)):
        return _cut(fmt.words(value), "text")
    if isinstance(value, bytes):
        return _cut(value.hex(), "text")
    return _cut(str(value), "text")


def _cut(text: str, kind: str, limit: int = MAX_CELL_CHARS, full_length: int = 0) -> Cell:
    if len(text) <= limit:
        return Cell(text, kind, full_length if full_length > len(text) else 0)
    return Cell(text[: limit - 1].rstrip() + "\u2026", kind, max(len(text), full_length))


def columns_of(rows: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return tuple(seen)


def count_cell(n: int) -> Cell:
    return Cell(f"{n:,}", "num zero" if n == 0 else "num")
