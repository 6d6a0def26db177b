"""The CloudWatch Logs Insights query language, parsed into an AST that keeps where every node came from.

Syntax: https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_QuerySyntax.html. A query is commands
separated by ``|``; lines whose first non-blank character is ``#`` are comments. Anything this module does not
know is rejected with an :class:`InsightsQueryError` that names the line and column, so that no query is ever
answered with a silently different meaning.

Two extensions serve the checks' ``query.insights`` files, and nothing else:

* ``:name`` is a parameter. :func:`bind` replaces it with a typed, validated literal before a query runs, so
  values never travel as free text.
* A line ``union all`` between two complete queries: CloudWatch has no UNION, so the engines run each query
  and concatenate the rows (columns matched by name; a query that lacks one of the first query's columns
  gives NULL there).

:func:`render` turns an AST back into query text, the way the CloudWatch engine sends it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Union

from auditor.errors import CheckDefinitionError


class InsightsQueryError(CheckDefinitionError):
    """A Logs Insights query that cannot be parsed or run here. ``pos`` is the offset in the query text."""

    def __init__(self, message: str, text: str = "", pos: int = 0, *, kind: str = "error") -> None:
        self.detail, self.text, self.pos, self.kind = message, text, pos, kind
        self.line, self.column = line_column(text, pos)
        lines = text.split("\n")
        excerpt = ""
        if text and 0 < self.line <= len(lines):
            src = lines[self.line - 1]
            excerpt = f"\n  {src}\n  {' ' * (self.column - 1)}^"
        super().__init__(f"insights query, line {self.line}, column {self.column}: {message}{excerpt}")


class InsightsUnsupportedError(InsightsQueryError):
    """Valid Logs Insights, but outside what this tool supports (see .notes/readme-insights.md)."""


def line_column(text: str, pos: int) -> tuple[int, int]:
    """1-based line and column of offset ``pos``."""
    pos = max(0, min(pos, len(text)))
    line = text.count("\n", 0, pos) + 1
    return line, pos - (text.rfind("\n", 0, pos) + 1) + 1


# ----------------------------------------------------------------------------------------------------- the AST

@dataclass(frozen=True)
class Field:
    pos: int = field(compare=False)
    name: str  # as CloudWatch names it: "srcAddr", "@timestamp", "requestParameters.groupId" (backticks removed)


@dataclass(frozen=True)
class Literal:
    pos: int = field(compare=False)
    value: Union[str, int, float]


@dataclass(frozen=True)
class Regex:
    pos: int = field(compare=False)
    pattern: str  # between the slashes, "\/" turned back into "/"


@dataclass(frozen=True)
class Period:
    """A time period such as ``5m`` or ``1h`` (bin, datefloor)."""

    pos: int = field(compare=False)
    count: int
    unit: str  # canonical: ms, s, m, h, d, w, mo, q, y
    spelled: str = field(default="", compare=False)  # as the query wrote it (30min): CloudWatch names columns so


@dataclass(frozen=True)
class Param:
    pos: int = field(compare=False)
    name: str


@dataclass(frozen=True)
class Call:
    pos: int = field(compare=False)
    name: str  # lower case
    args: tuple[Expr, ...] = ()
    star: bool = False  # count(*)
    spelled: str = ""  # the name as written, for messages and rendering


@dataclass(frozen=True)
class Unary:
    pos: int = field(compare=False)
    op: str  # "-" or "not"
    operand: Expr


@dataclass(frozen=True)
class Binary:
    pos: int = field(compare=False)
    op: str  # + - * / % ^ = != < <= > >= and or
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Like:
    pos: int = field(compare=False)
    operand: Expr
    pattern: Union[Literal, Regex]
    negated: bool = False
    op: str = "like"  # "like" or "=~"


@dataclass(frozen=True)
class In:
    pos: int = field(compare=False)
    operand: Expr
    items: Union[tuple[Expr, ...], Param]
    negated: bool = False


Expr = Union[Field, Literal, Regex, Period, Param, Call, Unary, Binary, Like, In]


@dataclass(frozen=True)
class Item:
    """``expr [as alias]`` in fields and stats."""

    pos: int = field(compare=False)
    expr: Expr
    alias: str | None = None


@dataclass(frozen=True)
class SortKey:
    pos: int = field(compare=False)
    field: Field
    desc: bool | None = None  # None: no direction written (ascending)


@dataclass(frozen=True)
class Fields:
    pos: int = field(compare=False)
    items: tuple[Item, ...]


@dataclass(frozen=True)
class Display:
    pos: int = field(compare=False)
    fields: tuple[Field, ...]


@dataclass(frozen=True)
class Filter:
    pos: int = field(compare=False)
    condition: Expr


@dataclass(frozen=True)
class Stats:
    pos: int = field(compare=False)
    aggregates: tuple[Item, ...]
    by: tuple[Item, ...] = ()


@dataclass(frozen=True)
class Sort:
    pos: int = field(compare=False)
    keys: tuple[SortKey, ...]


@dataclass(frozen=True)
class Limit:
    pos: int = field(compare=False)
    count: Union[int, Param]


@dataclass(frozen=True)
class Dedup:
    pos: int = field(compare=False)
    fields: tuple[Field, ...]


@dataclass(frozen=True)
class Parse:
    pos: int = field(compare=False)
    source: Field
    pattern: Union[Literal, Regex]
    names: tuple[str, ...]  # the glob's "as" names, or the regex's named groups, in order


Command = Union[Fields, Display, Filter, Stats, Sort, Limit, Dedup, Parse]


@dataclass(frozen=True)
class Pipeline:
    pos: int = field(compare=False)
    commands: tuple[Command, ...]


@dataclass(frozen=True)
class Program:
    """One query, or several joined by ``union all`` lines. ``text`` is the source, for error messages."""

    parts: tuple[Pipeline, ...]
    text: str = field(default="", compare=False)

    def error(self, message: str, pos: int, *, unsupported: bool = False) -> InsightsQueryError:
        cls = InsightsUnsupportedError if unsupported else InsightsQueryError
        return cls(message, self.text, pos)


COMMANDS = ("fields", "display", "filter", "stats", "sort", "limit", "dedup", "parse")
# Logs Insights commands this tool does not implement: named so that the error says "not supported", not "unknown".
UNSUPPORTED_COMMANDS = ("unmask", "pattern", "diff", "anomaly", "unnest", "lookup", "join", "filterindex", "source",
                        "head", "tail", "fieldsindex")
_AGGREGATE_NAMES = frozenset({"count", "count_distinct", "sum", "avg", "min", "max", "pct", "earliest", "latest"})
KEYWORDS = frozenset({"and", "or", "not", "like", "in", "as", "by", "asc", "desc"})

# bin() and datefloor() periods (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_QuerySyntax-Stats.html).
# A plural "s" is allowed on every unit longer than one letter.
_UNIT_NAMES = {
    "ms": "ms", "msec": "ms", "millisecond": "ms",
    "s": "s", "sec": "s", "second": "s",
    "m": "m", "min": "m", "minute": "m",
    "h": "h", "hr": "h", "hour": "h",
    "d": "d", "day": "d",
    "w": "w", "week": "w",
    "mo": "mo", "mon": "mo", "month": "mo",
    "q": "q", "qtr": "q", "quarter": "q",
    "y": "y", "yr": "y", "year": "y",
}


def _unit(word: str) -> str | None:
    w = word.lower()
    if w in _UNIT_NAMES:
        return _UNIT_NAMES[w]
    if len(w) > 2 and w.endswith("s") and w[:-1] in _UNIT_NAMES and len(w[:-1]) > 1:
        return _UNIT_NAMES[w[:-1]]
    return None


# --------------------------------------------------------------------------------------------------- the lexer

@dataclass(frozen=True)
class Token:
    kind: str  # ident, qident, string, number, period, regex, param, op, eof
    value: Any
    pos: int = field(compare=False)
    end: int

    def is_word(self, *words: str) -> bool:
        return self.kind == "ident" and str(self.value).lower() in words


_OPS = ("!=", "<=", ">=", "=~", "|", ",", "(", ")", "[", "]", "=", "<", ">", "+", "-", "*", "/", "%", "^")
_IDENT_START = re.compile(r"[A-Za-z_@]")
_IDENT = re.compile(r"[A-Za-z_@][A-Za-z0-9_@]*(?:\.[A-Za-z0-9_@]+)*")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_PARAM = re.compile(r":([a-z_][a-z0-9_]*)")


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self._peeked: Token | None = None

    def error(self, message: str, pos: int) -> InsightsQueryError:
        return InsightsQueryError(message, self.text, pos)

    def _skip(self) -> None:
        text, n = self.text, len(self.text)
        while self.i < n:
            c = text[self.i]
            if c in " \t\r\n":
                self.i += 1
            elif c == "#" and text[text.rfind("\n", 0, self.i) + 1:self.i].strip() == "":
                # A comment: the rest of a line whose first non-blank character is "#".
                nl = text.find("\n", self.i)
                self.i = n if nl < 0 else nl + 1
            else:
                return

    def peek(self) -> Token:
        if self._peeked is None:
            self._peeked = self._scan()
        return self._peeked

    def next(self) -> Token:
        tok = self.peek()
        self._peeked = None
        return tok

    def regex(self) -> Token:
        """Read a /regex/ at the current position (the caller knows one may start here)."""
        tok = self.peek()
        if not (tok.kind == "op" and tok.value == "/"):
            return self.next()
        self._peeked = None
        start = tok.pos
        j, out = start + 1, []
        while j < len(self.text):
            c = self.text[j]
            if c == "\\" and j + 1 < len(self.text):
                nxt = self.text[j + 1]
                out.append("/" if nxt == "/" else c + nxt)
                j += 2
                continue
            if c == "/":
                self.i = j + 1
                return Token("regex", "".join(out), start, j + 1)
            if c == "\n":
                break
            out.append(c)
            j += 1
        raise self.error("this regular expression has no closing '/'", start)

    def _scan(self) -> Token:
        self._skip()
        text, i = self.text, self.i
        if i >= len(text):
            return Token("eof", None, i, i)
        c = text[i]
        if c in "\"'":
            j, out = i + 1, []
            while j < len(text):
                ch = text[j]
                if ch == "\\" and j + 1 < len(text):
                    nxt = text[j + 1]
                    out.append(nxt if nxt in ("\\", c) else ch + nxt)
                    j += 2
                    continue
                if ch == c:
                    self.i = j + 1
                    return Token("string", "".join(out), i, j + 1)
                out.append(ch)
                j += 1
            raise self.error(f"this string has no closing {c}", i)
        if c == "`":
            j = text.find("`", i + 1)
            if j < 0 or "\n" in text[i + 1:j]:
                raise self.error("this field name has no closing backtick", i)
            if j == i + 1:
                raise self.error("empty field name", i)
            self.i = j + 1
            return Token("qident", text[i + 1:j], i, j + 1)
        if c in "0123456789":
            m = _NUMBER.match(text, i)
            assert m is not None
            end = m.end()
            w = re.compile(r"[A-Za-z]+").match(text, end)
            if w is None and re.fullmatch(r"[0-9]+", m.group()):
                # "bin(30 min)": a space between the number and its unit, inside bin()/datefloor(), where the
                # word is a unit and the call closes after it.
                spaced = re.compile(r"[ \t]+([A-Za-z]+)(?=[ \t]*\))").match(text, end)
                if spaced and _unit(spaced.group(1)) is not None:
                    w = re.compile(r"[A-Za-z]+").match(text, spaced.start(1))
            if w:
                unit = _unit(w.group())
                if unit is None or not re.fullmatch(r"[0-9]+", m.group()):
                    raise self.error(f"'{m.group()}{w.group()}' is neither a number nor a time period like 5m or 1h",
                                     i)
                self.i = w.end()
                return Token("period", (int(m.group()), unit, text[i:w.end()]), i, w.end())
            self.i = end
            num = m.group()
            value: int | float = int(num) if re.fullmatch(r"[0-9]+", num) else float(num)
            return Token("number", value, i, end)
        if c == ":":
            m = _PARAM.match(text, i)
            if not m:
                raise self.error("':' must start a parameter such as :top_n", i)
            self.i = m.end()
            return Token("param", m.group(1), i, m.end())
        if _IDENT_START.match(c):
            m = _IDENT.match(text, i)
            assert m is not None
            if text[m.end():m.end() + 1] == ".":
                raise self.error("a field name cannot end with '.'", m.end())
            self.i = m.end()
            return Token("ident", m.group(), i, m.end())
        for op in _OPS:
            if text.startswith(op, i):
                self.i = i + len(op)
                return Token("op", op, i, i + len(op))
        if c == "#":
            raise self.error("'#' starts a comment only at the beginning of a line", i)
        raise self.error(f"unexpected character {c!r}", i)


# -------------------------------------------------------------------------------------------------- the parser

class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.lex = _Lexer(text)

    def error(self, message: str, pos: int) -> InsightsQueryError:
        return InsightsQueryError(message, self.text, pos)

    def unsupported(self, message: str, pos: int) -> InsightsUnsupportedError:
        return InsightsUnsupportedError(message, self.text, pos)

    def expect_op(self, op: str, what: str) -> Token:
        tok = self.lex.next()
        if tok.kind != "op" or tok.value != op:
            raise self.error(f"expected '{op}' {what}, found {_describe(tok)}", tok.pos)
        return tok

    def at_op(self, op: str) -> bool:
        tok = self.lex.peek()
        return tok.kind == "op" and tok.value == op

    # -- program -----------------------------------------------------------------------------------------

    def program(self) -> Program:
        parts = [self.pipeline()]
        while True:
            tok = self.lex.peek()
            if tok.kind == "eof":
                break
            if tok.is_word("union"):
                self.lex.next()
                nxt = self.lex.next()
                if not nxt.is_word("all"):
                    raise self.error("expected 'all' after 'union' (only UNION ALL is supported)", nxt.pos)
                parts.append(self.pipeline())
                continue
            raise self.error(f"expected '|' or the end of the query, found {_describe(tok)}", tok.pos)
        return Program(tuple(parts), self.text)

    def pipeline(self) -> Pipeline:
        start = self.lex.peek()
        if start.kind == "eof":
            raise self.error("empty query: expected a command such as filter, fields or stats", start.pos)
        commands = [self.command()]
        while self.at_op("|"):
            self.lex.next()
            commands.append(self.command())
        return Pipeline(start.pos, tuple(commands))

    def command(self) -> Command:
        tok = self.lex.next()
        if tok.kind != "ident":
            raise self.error(f"expected a command (fields, filter, stats, sort, limit, ...), found {_describe(tok)}",
                             tok.pos)
        word = str(tok.value).lower()
        if word in UNSUPPORTED_COMMANDS:
            raise self.unsupported(f"the '{tok.value}' command is not supported by this tool", tok.pos)
        handler = getattr(self, f"cmd_{word}", None) if word in COMMANDS else None
        if handler is None and word in _AGGREGATE_NAMES and self.at_op("("):
            # CloudWatch documents no bare aggregation as a command (the stats page always writes stats first), so
            # it is refused rather than guessed at, with the query to write instead.
            rest = self.text[tok.pos:].split("|", 1)[0].strip()
            suggestion = "stats " + re.sub(r"^(\w+)\s+\(", r"\1(", rest)
            raise self.error(f"unknown command '{tok.value}': an aggregation needs stats "
                             f"(did you mean '{suggestion}'?)", tok.pos)
        if handler is None:
            close = difflib.get_close_matches(word, COMMANDS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise self.error(f"unknown command '{tok.value}'{hint}", tok.pos)
        return handler(tok.pos)

    # -- commands ----------------------------------------------------------------------------------------

    def cmd_fields(self, pos: int) -> Fields:
        return Fields(pos, tuple(self.items()))

    def cmd_display(self, pos: int) -> Display:
        return Display(pos, tuple(self.field_list("display")))

    def cmd_filter(self, pos: int) -> Filter:
        return Filter(pos, self.expr())

    def cmd_stats(self, pos: int) -> Stats:
        aggs = self.items()
        by: list[Item] = []
        if self.lex.peek().is_word("by"):
            self.lex.next()
            by = self.items()
        return Stats(pos, tuple(aggs), tuple(by))

    def cmd_sort(self, pos: int) -> Sort:
        keys = []
        while True:
            tok = self.lex.peek()
            f = self.field_ref("sort")
            desc = None
            if self.lex.peek().is_word("asc", "desc"):
                desc = str(self.lex.next().value).lower() == "desc"
            keys.append(SortKey(tok.pos, f, desc))
            if not self.at_op(","):
                return Sort(pos, tuple(keys))
            self.lex.next()

    def cmd_limit(self, pos: int) -> Limit:
        tok = self.lex.next()
        if tok.kind == "param":
            return Limit(pos, Param(tok.pos, tok.value))
        if tok.kind != "number" or not isinstance(tok.value, int) or tok.value < 1:
            raise self.error(f"limit takes a whole number of rows (1 or more), found {_describe(tok)}", tok.pos)
        return Limit(pos, tok.value)

    def cmd_dedup(self, pos: int) -> Dedup:
        return Dedup(pos, tuple(self.field_list("dedup")))

    def cmd_parse(self, pos: int) -> Parse:
        tok = self.lex.peek()
        source = Field(pos, "@message")
        if tok.kind in ("ident", "qident"):
            source = self.field_ref("parse")
        tok = self.lex.regex()
        if tok.kind == "regex":
            pattern: Literal | Regex = Regex(tok.pos, tok.value)
            names = _named_groups(tok.value)
            if not names:
                raise self.error("a parse regular expression needs named groups such as (?<name>\\S+)", tok.pos)
            for name, offset in names:
                if not re.fullmatch(r"@?[A-Za-z_][A-Za-z0-9_]*", name):
                    raise self.error(f"'{name}' cannot name a field", tok.pos + 1 + offset)
            if self.lex.peek().is_word("as"):
                raise self.error("a parse regular expression names its fields with (?<name>...); 'as' is for "
                                 "glob patterns", self.lex.peek().pos)
            return Parse(pos, source, pattern, tuple(n for n, _ in names))
        if tok.kind != "string":
            raise self.error(f"parse takes a glob pattern in quotes or a /regular expression/, found {_describe(tok)}",
                             tok.pos)
        pattern = Literal(tok.pos, tok.value)
        stars = tok.value.count("*")
        if stars == 0:
            raise self.error("a parse glob pattern needs at least one '*'", tok.pos)
        as_tok = self.lex.next()
        if not as_tok.is_word("as"):
            raise self.error(f"expected 'as' and {stars} field name(s) after the glob pattern, found "
                             f"{_describe(as_tok)}", as_tok.pos)
        names = []
        while True:
            t = self.lex.next()
            if t.kind not in ("ident", "qident") or (t.kind == "ident" and t.value.lower() in KEYWORDS):
                raise self.error(f"expected a field name, found {_describe(t)}", t.pos)
            if "." in t.value and t.kind == "ident":
                raise self.error("a parsed field name cannot contain '.'", t.pos)
            names.append(t.value)
            if not self.at_op(","):
                break
            self.lex.next()
        if len(names) != stars:
            raise self.error(f"the glob pattern has {stars} '*' but {len(names)} name(s) follow 'as'", as_tok.pos)
        return Parse(pos, source, pattern, tuple(names))

    # -- pieces ------------------------------------------------------------------------------------------

    def items(self) -> list[Item]:
        out = []
        while True:
            tok = self.lex.peek()
            if tok.kind == "eof" or (tok.kind == "op" and tok.value in ("|", ",")):
                raise self.error(f"expected a field or an expression, found {_describe(tok)}", tok.pos)
            e = self.expr()
            alias = None
            if self.lex.peek().is_word("as"):
                self.lex.next()
                a = self.lex.next()
                if a.kind not in ("ident", "qident") or (a.kind == "ident" and a.value.lower() in KEYWORDS):
                    raise self.error(f"expected a name after 'as', found {_describe(a)}", a.pos)
                alias = a.value
            out.append(Item(tok.pos, e, alias))
            if not self.at_op(","):
                return out
            self.lex.next()

    def field_list(self, command: str) -> list[Field]:
        out = [self.field_ref(command)]
        while self.at_op(","):
            self.lex.next()
            out.append(self.field_ref(command))
        return out

    def field_ref(self, command: str) -> Field:
        tok = self.lex.next()
        if tok.kind == "qident" or (tok.kind == "ident" and tok.value.lower() not in KEYWORDS):
            if self.at_op("("):
                raise self.error(f"{command} takes field names, not function calls", tok.pos)
            return Field(tok.pos, tok.value)
        raise self.error(f"{command} takes field names, found {_describe(tok)}", tok.pos)

    # -- expressions: or < and < not < comparison < additive < multiplicative < power < unary < primary ----

    def expr(self) -> Expr:
        left = self.and_expr()
        while self.lex.peek().is_word("or"):
            tok = self.lex.next()
            left = Binary(tok.pos, "or", left, self.and_expr())
        return left

    def and_expr(self) -> Expr:
        left = self.not_expr()
        while self.lex.peek().is_word("and"):
            tok = self.lex.next()
            left = Binary(tok.pos, "and", left, self.not_expr())
        return left

    def not_expr(self) -> Expr:
        tok = self.lex.peek()
        if tok.is_word("not"):
            self.lex.next()
            return Unary(tok.pos, "not", self.not_expr())
        return self.comparison()

    def comparison(self) -> Expr:
        left = self.additive()
        tok = self.lex.peek()
        if tok.kind == "op" and tok.value in ("=", "!=", "<", "<=", ">", ">="):
            self.lex.next()
            right = self.additive()
            nxt = self.lex.peek()
            if nxt.kind == "op" and nxt.value in ("=", "!=", "<", "<=", ">", ">=", "=~"):
                raise self.error("comparisons cannot be chained; join them with 'and'", nxt.pos)
            return Binary(tok.pos, tok.value, left, right)
        if tok.kind == "op" and tok.value == "=~":
            self.lex.next()
            return Like(tok.pos, left, self.pattern("=~"), False, "=~")
        negated = False
        if tok.is_word("not"):
            self.lex.next()
            negated = True
            tok = self.lex.peek()
            if not tok.is_word("like", "in"):
                raise self.error(f"expected 'like' or 'in' after 'not', found {_describe(tok)}", tok.pos)
        if tok.is_word("like"):
            self.lex.next()
            return Like(tok.pos, left, self.pattern("like"), negated)
        if tok.is_word("in"):
            self.lex.next()
            return In(tok.pos, left, self.in_list(), negated)
        return left

    def pattern(self, op: str) -> Literal | Regex:
        tok = self.lex.regex()
        if tok.kind == "regex":
            return Regex(tok.pos, tok.value)
        if tok.kind == "string":
            return Literal(tok.pos, tok.value)
        raise self.error(f"'{op}' takes a \"string\" or a /regular expression/, found {_describe(tok)}", tok.pos)

    def in_list(self) -> tuple[Expr, ...] | Param:
        tok = self.lex.peek()
        if tok.kind == "param":
            self.lex.next()
            return Param(tok.pos, tok.value)
        self.expect_op("[", "to start the list after 'in'")
        items: list[Expr] = []
        if self.at_op("]"):
            raise self.error("the list after 'in' is empty", self.lex.peek().pos)
        while True:
            t = self.lex.peek()
            item = self.unary()
            if not isinstance(item, Literal) and not (isinstance(item, Unary) and isinstance(item.operand, Literal)):
                raise self.error("the list after 'in' holds strings and numbers only", t.pos)
            items.append(item)
            if self.at_op(","):
                self.lex.next()
                continue
            self.expect_op("]", "to close the list after 'in'")
            return tuple(items)

    def additive(self) -> Expr:
        left = self.multiplicative()
        while True:
            tok = self.lex.peek()
            if tok.kind == "op" and tok.value in ("+", "-"):
                self.lex.next()
                left = Binary(tok.pos, tok.value, left, self.multiplicative())
            else:
                return left

    def multiplicative(self) -> Expr:
        left = self.power()
        while True:
            tok = self.lex.peek()
            if tok.kind == "op" and tok.value in ("*", "/", "%"):
                self.lex.next()
                left = Binary(tok.pos, tok.value, left, self.power())
            else:
                return left

    def power(self) -> Expr:
        base = self.unary()
        tok = self.lex.peek()
        if tok.kind == "op" and tok.value == "^":
            self.lex.next()
            return Binary(tok.pos, "^", base, self.power())  # right-associative
        return base

    def unary(self) -> Expr:
        tok = self.lex.peek()
        if tok.kind == "op" and tok.value == "-":
            self.lex.next()
            operand = self.unary()
            if isinstance(operand, Literal) and isinstance(operand.value, (int, float)):
                return Literal(tok.pos, -operand.value)
            return Unary(tok.pos, "-", operand)
        return self.primary()

    def primary(self) -> Expr:
        tok = self.lex.next()
        if tok.kind == "number":
            return Literal(tok.pos, tok.value)
        if tok.kind == "string":
            return Literal(tok.pos, tok.value)
        if tok.kind == "period":
            return Period(tok.pos, *tok.value)
        if tok.kind == "param":
            return Param(tok.pos, tok.value)
        if tok.kind == "regex" or (tok.kind == "op" and tok.value == "/"):
            raise self.error("a /regular expression/ may only follow 'like', '=~' or 'parse'", tok.pos)
        if tok.kind == "op" and tok.value == "(":
            inner = self.expr()
            self.expect_op(")", "to close the parenthesis")
            return inner
        if tok.kind == "qident":
            return Field(tok.pos, tok.value)
        if tok.kind == "ident":
            if tok.value.lower() in KEYWORDS:
                raise self.error(f"'{tok.value}' is a keyword; write `{tok.value}` for a field of that name", tok.pos)
            if self.at_op("("):
                return self.call(tok)
            return Field(tok.pos, tok.value)
        raise self.error(f"expected a field, a value or an expression, found {_describe(tok)}", tok.pos)

    def call(self, name: Token) -> Call:
        self.lex.next()  # "("
        lname = name.value.lower()
        if self.at_op("*"):
            star = self.lex.next()
            if lname != "count":
                raise self.error("only count(*) takes '*'", star.pos)
            self.expect_op(")", "after count(*")
            return Call(name.pos, lname, (), True, name.value)
        args: list[Expr] = []
        if not self.at_op(")"):
            while True:
                args.append(self.expr())
                if not self.at_op(","):
                    break
                self.lex.next()
        self.expect_op(")", f"to close {name.value}(")
        return Call(name.pos, lname, tuple(args), False, name.value)


def _describe(tok: Token) -> str:
    if tok.kind == "eof":
        return "the end of the query"
    if tok.kind == "string":
        return f'the string "{tok.value}"'
    if tok.kind == "period":
        return f"the period {tok.value[0]}{tok.value[1]}"
    if tok.kind == "regex":
        return "a regular expression"
    if tok.kind == "param":
        return f"the parameter :{tok.value}"
    return f"'{tok.value}'"


_GROUP = re.compile(r"\(\?P?<([^>=!]*)>")


def _named_groups(pattern: str) -> list[tuple[str, int]]:
    """The named groups ``(?<name>...)`` (or ``(?P<name>...)``) of a regex, with their offsets."""
    out, i = [], 0
    while i < len(pattern):
        if pattern[i] == "\\":
            i += 2
            continue
        m = _GROUP.match(pattern, i)
        if m:
            out.append((m.group(1), m.start(1)))
            i = m.end()
            continue
        i += 1
    return out


def parse(text: str) -> Program:
    """Parse a Logs Insights query (or several joined by ``union all`` lines). Raises InsightsQueryError."""
    if not isinstance(text, str):
        raise InsightsQueryError("the query must be text")
    return _Parser(text).program()


# ------------------------------------------------------------------------------------------ walking and binding

def children(node: Any) -> Iterator[Any]:
    """The direct child nodes of an AST node (expressions, items, commands)."""
    if isinstance(node, (Unary,)):
        yield node.operand
    elif isinstance(node, Binary):
        yield node.left
        yield node.right
    elif isinstance(node, Like):
        yield node.operand
        yield node.pattern
    elif isinstance(node, In):
        yield node.operand
        if isinstance(node.items, tuple):
            yield from node.items
        else:
            yield node.items
    elif isinstance(node, Call):
        yield from node.args
    elif isinstance(node, Item):
        yield node.expr
    elif isinstance(node, Fields):
        yield from node.items
    elif isinstance(node, Stats):
        yield from node.aggregates
        yield from node.by
    elif isinstance(node, Filter):
        yield node.condition
    elif isinstance(node, (Display, Dedup)):
        yield from node.fields
    elif isinstance(node, Sort):
        yield from (k.field for k in node.keys)
    elif isinstance(node, Limit):
        if isinstance(node.count, Param):
            yield node.count
    elif isinstance(node, Parse):
        yield node.source
    elif isinstance(node, Pipeline):
        yield from node.commands
    elif isinstance(node, Program):
        yield from node.parts


def walk(node: Any) -> Iterator[Any]:
    """``node`` and everything under it, depth first."""
    yield node
    for child in children(node):
        yield from walk(child)


def params_used(program: Program) -> list[str]:
    """The ``:name`` parameters a program uses, in order of first appearance."""
    seen: list[str] = []
    for node in walk(program):
        if isinstance(node, Param) and node.name not in seen:
            seen.append(node.name)
    return seen


_SAFE_TEXT = re.compile(r"[A-Za-z0-9_.:/\-]{1,256}")


def _literal(program: Program, param: Param, value: Any) -> Literal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise program.error(f"parameter :{param.name} must be a number or a simple value, got {type(value).__name__}",
                            param.pos)
    if isinstance(value, str) and not _SAFE_TEXT.fullmatch(value):
        # Only typed, validated literals go into query text: identifiers, CIDRs, enums. Anything else is refused.
        raise program.error(f"parameter :{param.name} holds text that is not a plain identifier, CIDR or enum value",
                            param.pos)
    return Literal(param.pos, value)


def _period_value(program: Program, param: Param, value: Any) -> Period:
    """A period parameter of bin()/datefloor(): ``hour``, ``day`` (a chart's bucket) or ``5m``-like text."""
    text = str(value).strip()
    m = re.fullmatch(r"([0-9]*)\s*([A-Za-z]+)", text)
    unit = _unit(m.group(2)) if m else None
    if m is None or unit is None or isinstance(value, bool):
        raise program.error(f"parameter :{param.name} must be a time period like 1h or day, got {value!r}", param.pos)
    count = int(m.group(1) or 1)
    return Period(param.pos, count, unit, f"{count}{m.group(2)}" if m.group(1) else f"1{unit}")


def bind(program: Program, values: Mapping[str, Any]) -> Program:
    """Replace every ``:name`` with a literal from ``values`` (a list for ``in :name``). Raises on a missing one."""
    def sub(node: Any) -> Any:
        if isinstance(node, Param):
            if node.name not in values:
                known = ", ".join(sorted(values)) or "none"
                raise program.error(f"no value for parameter :{node.name} (known: {known})", node.pos)
            return _literal(program, node, values[node.name])
        if isinstance(node, In) and isinstance(node.items, Param):
            if node.items.name not in values:
                raise program.error(f"no value for parameter :{node.items.name}", node.items.pos)
            seq = values[node.items.name]
            if isinstance(seq, (str, bytes)) or not hasattr(seq, "__iter__"):
                raise program.error(f"parameter :{node.items.name} after 'in' must be a list", node.items.pos)
            items = tuple(_literal(program, node.items, v) for v in seq)
            if not items:
                # "x in []" matches nothing; keep the meaning with a list that cannot match any field value.
                raise program.error(f"parameter :{node.items.name} is an empty list", node.items.pos)
            return replace(node, operand=sub(node.operand), items=items)
        if isinstance(node, Call) and node.name in ("bin", "datefloor") and node.args \
                and isinstance(node.args[-1], Param):
            param = node.args[-1]
            if param.name not in values:
                raise program.error(f"no value for parameter :{param.name}", param.pos)
            period = _period_value(program, param, values[param.name])
            return replace(node, args=tuple(sub(a) for a in node.args[:-1]) + (period,))
        if isinstance(node, Limit) and isinstance(node.count, Param):
            lit = sub(node.count)
            if not isinstance(lit.value, int) or isinstance(lit.value, bool) or lit.value < 1:
                raise program.error(f"parameter :{node.count.name} must be a whole number of rows", node.count.pos)
            return replace(node, count=lit.value)
        return _map_children(node, sub)

    return sub(program)


def _map_children(node: Any, fn: Any) -> Any:
    """A copy of ``node`` with ``fn`` applied to each child node."""
    if isinstance(node, Unary):
        return replace(node, operand=fn(node.operand))
    if isinstance(node, Binary):
        return replace(node, left=fn(node.left), right=fn(node.right))
    if isinstance(node, Like):
        return replace(node, operand=fn(node.operand))
    if isinstance(node, In):
        items = tuple(fn(i) for i in node.items) if isinstance(node.items, tuple) else fn(node.items)
        return replace(node, operand=fn(node.operand), items=items)
    if isinstance(node, Call):
        return replace(node, args=tuple(fn(a) for a in node.args))
    if isinstance(node, Item):
        return replace(node, expr=fn(node.expr))
    if isinstance(node, Fields):
        return replace(node, items=tuple(fn(i) for i in node.items))
    if isinstance(node, Stats):
        return replace(node, aggregates=tuple(fn(i) for i in node.aggregates), by=tuple(fn(i) for i in node.by))
    if isinstance(node, Filter):
        return replace(node, condition=fn(node.condition))
    if isinstance(node, Limit):
        return node
    if isinstance(node, Pipeline):
        return replace(node, commands=tuple(fn(c) for c in node.commands))
    if isinstance(node, Program):
        return replace(node, parts=tuple(fn(p) for p in node.parts))
    return node


# -------------------------------------------------------------------------------------------------- rendering

_PLAIN_FIELD = re.compile(r"@*[A-Za-z_][A-Za-z0-9_@]*(?:\.[A-Za-z0-9_@]+)*")
_PRECEDENCE = {"or": 1, "and": 2, "=": 4, "!=": 4, "<": 4, "<=": 4, ">": 4, ">=": 4,
               "+": 5, "-": 5, "*": 6, "/": 6, "%": 6, "^": 7}


def render_field(name: str) -> str:
    """A field name as query text, in backticks when it holds other characters than letters, digits, _ @ ."""
    if _PLAIN_FIELD.fullmatch(name) and name.lower() not in KEYWORDS:
        return name
    return f"`{name}`"


def _string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _number(value: int | float) -> str:
    if isinstance(value, float):
        text = repr(value)
        return text if "inf" not in text and "nan" not in text else "0"
    return str(value)


def render_expr(e: Expr, parent: int = 0) -> str:
    """An expression as Logs Insights text; parentheses only where precedence needs them."""
    if isinstance(e, Field):
        return render_field(e.name)
    if isinstance(e, Literal):
        if isinstance(e.value, str):
            return _string(e.value)
        text = _number(e.value)
        return f"({text})" if e.value < 0 and parent else text
    if isinstance(e, Regex):
        return "/" + e.pattern.replace("/", "\\/") + "/"
    if isinstance(e, Period):
        return e.spelled or f"{e.count}{e.unit}"
    if isinstance(e, Param):
        return f":{e.name}"
    if isinstance(e, Call):
        name = e.spelled or e.name
        if e.star:
            return f"{name}(*)"
        return f"{name}({', '.join(render_expr(a) for a in e.args)})"
    if isinstance(e, Unary):
        if e.op == "not":
            text = f"not {render_expr(e.operand, 3)}"
            return f"({text})" if parent > 3 else text
        return f"-{render_expr(e.operand, 8)}"
    if isinstance(e, Binary):
        p = _PRECEDENCE[e.op]
        right_p = p + 1 if e.op != "^" else p
        left_p = p if e.op != "^" else p + 1
        text = f"{render_expr(e.left, left_p)} {e.op} {render_expr(e.right, right_p)}"
        return f"({text})" if parent > p or (parent == p and p == 4) else text
    if isinstance(e, Like):
        op = ("not like" if e.negated else "like") if e.op == "like" else "=~"
        text = f"{render_expr(e.operand, 5)} {op} {render_expr(e.pattern)}"
        return f"({text})" if parent >= 4 else text
    if isinstance(e, In):
        items = f":{e.items.name}" if isinstance(e.items, Param) else \
            "[" + ", ".join(render_expr(i) for i in e.items) + "]"
        text = f"{render_expr(e.operand, 5)} {'not in' if e.negated else 'in'} {items}"
        return f"({text})" if parent >= 4 else text
    raise TypeError(f"not an expression: {e!r}")


def _item(i: Item) -> str:
    text = render_expr(i.expr)
    return f"{text} as {render_field(i.alias)}" if i.alias else text


def render_command(c: Command) -> str:
    if isinstance(c, Fields):
        return "fields " + ", ".join(_item(i) for i in c.items)
    if isinstance(c, Display):
        return "display " + ", ".join(render_field(f.name) for f in c.fields)
    if isinstance(c, Filter):
        return "filter " + render_expr(c.condition)
    if isinstance(c, Stats):
        text = "stats " + ", ".join(_item(i) for i in c.aggregates)
        if c.by:
            text += " by " + ", ".join(_item(i) for i in c.by)
        return text
    if isinstance(c, Sort):
        return "sort " + ", ".join(render_field(k.field.name) + ("" if k.desc is None else " desc" if k.desc else " asc")
                                   for k in c.keys)
    if isinstance(c, Limit):
        return f"limit {c.count if isinstance(c.count, int) else ':' + c.count.name}"
    if isinstance(c, Dedup):
        return "dedup " + ", ".join(render_field(f.name) for f in c.fields)
    if isinstance(c, Parse):
        if isinstance(c.pattern, Regex):
            return f"parse {render_field(c.source.name)} {render_expr(c.pattern)}"
        return (f"parse {render_field(c.source.name)} {render_expr(c.pattern)} as "
                + ", ".join(render_field(n) for n in c.names))
    raise TypeError(f"not a command: {c!r}")


def render(node: Pipeline | Program) -> str:
    """Query text for a pipeline (one command per line) or a program (parts joined by ``union all``)."""
    if isinstance(node, Program):
        return "\nunion all\n".join(render(p) for p in node.parts)
    return "\n| ".join(render_command(c) for c in node.commands)
