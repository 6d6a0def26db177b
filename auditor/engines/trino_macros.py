"""DuckDB macros with Trino's semantics, which the fix-ups (:mod:`auditor.engines.fixups`) call where DuckDB's own
function answers differently. Each one cites the Trino behaviour it reproduces; ``tests/trino/conformance.yaml``
runs every one of them against the value Trino documents.

Where Trino fails a query (a JSON array cast to VARCHAR, an array subscript out of bounds), the macro fails it too,
with Trino's message: a query that Athena refuses must not give rows locally. ``try_cast`` has a ``trino_try_*``
twin that gives NULL instead, as Trino's ``try_cast`` does (DuckDB's ``TRY()`` cannot wrap ``error()``).
"""

from __future__ import annotations

import duckdb

# Java's String.trim() removes every character up to U+0020; Long.parseLong then takes an optional sign and digits.
_JAVA_TRIM = r"regexp_replace({x}, '^[\x00-\x20]+|[\x00-\x20]+$', '', 'g')"
_JAVA_INTEGER = r"'^[\x00-\x20]*[+-]?[0-9]+[\x00-\x20]*$'"
# Double.parseDouble: decimal and exponent forms, NaN, Infinity and a trailing type suffix (1.5d).
_JAVA_DOUBLE = r"'^[\x00-\x20]*[+-]?(NaN|Infinity|([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?[fFdD]?)[\x00-\x20]*$'"


def _fail(strict: bool, message: str) -> str:
    """SQL that fails with ``message`` (an SQL string expression), or NULL for a ``try_`` macro."""
    return f"error({message})" if strict else "NULL"


def _variants(name: str, params: str, template: str) -> list[str]:
    """The strict macro and its ``try`` twin: ``{fail:message:fail}`` becomes error(message) or NULL, ``{cast}`` CAST or
    TRY_CAST, ``{p}`` the macro prefix of the variant."""
    out = []
    for strict, prefix in ((True, "trino_"), (False, "trino_try_")):
        text = template.replace("{cast}", "CAST" if strict else "TRY_CAST").replace("{p}", prefix)
        while "{fail:" in text:
            start = text.index("{fail:")
            end = text.index(":fail}", start)
            text = text[:start] + _fail(strict, text[start + 6:end]) + text[end + 6:]
        out.append(f"CREATE OR REPLACE MACRO {prefix}{name}({params}) AS {text}")
    return out


# VARCHAR -> BIGINT/BOOLEAN/DOUBLE as Trino's VarcharOperators: Long.parseLong(trim(s)), exactly t/f/1/0/true/false
# (any case, no trimming), Double.parseDouble(trim(s)). DuckDB also reads '1.5', '1e3', '0x10', '1_000', 'yes'.
_VARCHAR_CASTS = [
    *_variants("varchar_bigint", "s", (
        "CASE WHEN s IS NULL THEN NULL "
        f"WHEN regexp_matches(s, {_JAVA_INTEGER}) THEN {{cast}}({_JAVA_TRIM.format(x='s')} AS BIGINT) "
        "ELSE {fail:'Cannot cast ''' || s || ''' to BIGINT':fail} END")),
    *_variants("varchar_boolean", "s", (
        "CASE WHEN s IS NULL THEN NULL WHEN upper(s) IN ('T', '1', 'TRUE') THEN true "
        "WHEN upper(s) IN ('F', '0', 'FALSE') THEN false "
        "ELSE {fail:'Cannot cast ''' || s || ''' to BOOLEAN':fail} END")),
    *_variants("varchar_double", "s", (
        "CASE WHEN s IS NULL THEN NULL "
        f"WHEN regexp_matches(s, {_JAVA_DOUBLE}) "
        f"THEN CAST(regexp_replace({_JAVA_TRIM.format(x='s')}, '[fFdD]$', '') AS DOUBLE) "
        "ELSE {fail:'Cannot cast ''' || s || ''' to DOUBLE (the local engine reads decimal and exponent forms, "
        "NaN and Infinity)':fail} END")),
]

# CAST(JSON AS ...) as Trino's JsonOperators: a JSON string, number, boolean or null casts to VARCHAR, BIGINT,
# DOUBLE and BOOLEAN; an array or object does not (https://trino.io/docs/current/functions/json.html#cast-from-json).
_JSON_NULL = "j IS NULL OR json_type(j) = 'NULL'"
_JSON_NOT_SCALAR = "{fail:'Cannot cast ''' || CAST(j AS VARCHAR) || ''' to %s':fail}"
_JSON_CASTS = [
    # A JSON number with a fraction or an exponent becomes text through DOUBLE in Trino, whose printing of a
    # DOUBLE changed between versions (1.5 or 1.5E0) and is being changed again (trinodb/trino#28881); DuckDB
    # rewrites such numbers (1.50 becomes 1.5), so neither can be matched: such a value is refused.
    *_variants("json_varchar", "j", (
        f"CASE WHEN {_JSON_NULL} THEN NULL "
        "WHEN json_type(j) IN ('VARCHAR', 'BOOLEAN', 'BIGINT', 'UBIGINT') THEN json_extract_string(j, '$') "
        "WHEN json_type(j) = 'DOUBLE' THEN {fail:'CAST(JSON AS VARCHAR) of the number ' || CAST(j AS VARCHAR) || "
        "': Athena prints it through DOUBLE and the local engine cannot print it the same way; "
        "CAST it to DOUBLE or DECIMAL instead':fail} "
        f"ELSE {_JSON_NOT_SCALAR % 'VARCHAR'} END")),
    # Numbers with a fraction round half away from zero (DoubleOperators.castToLong uses HALF_UP);
    # DuckDB's own JSON cast rounds half to even.
    *_variants("json_bigint", "j", (
        f"CASE WHEN {_JSON_NULL} THEN NULL "
        "WHEN json_type(j) IN ('BIGINT', 'UBIGINT') THEN {cast}(j AS BIGINT) "
        "WHEN json_type(j) = 'DOUBLE' THEN {cast}(round(CAST(j AS DOUBLE)) AS BIGINT) "
        "WHEN json_type(j) = 'BOOLEAN' THEN CASE WHEN CAST(j AS BOOLEAN) THEN 1 ELSE 0 END "
        "WHEN json_type(j) = 'VARCHAR' THEN {p}varchar_bigint(json_extract_string(j, '$')) "
        f"ELSE {_JSON_NOT_SCALAR % 'BIGINT'} END")),
    *_variants("json_double", "j", (
        f"CASE WHEN {_JSON_NULL} THEN NULL "
        "WHEN json_type(j) IN ('BIGINT', 'UBIGINT', 'DOUBLE') THEN CAST(j AS DOUBLE) "
        "WHEN json_type(j) = 'BOOLEAN' THEN CASE WHEN CAST(j AS BOOLEAN) THEN 1e0 ELSE 0e0 END "
        "WHEN json_type(j) = 'VARCHAR' THEN {p}varchar_double(json_extract_string(j, '$')) "
        f"ELSE {_JSON_NOT_SCALAR % 'DOUBLE'} END")),
    *_variants("json_boolean", "j", (
        f"CASE WHEN {_JSON_NULL} THEN NULL "
        "WHEN json_type(j) IN ('BIGINT', 'UBIGINT', 'DOUBLE') THEN CAST(j AS DOUBLE) <> 0 "
        "WHEN json_type(j) = 'BOOLEAN' THEN CAST(j AS BOOLEAN) "
        "WHEN json_type(j) = 'VARCHAR' THEN {p}varchar_boolean(json_extract_string(j, '$')) "
        f"ELSE {_JSON_NOT_SCALAR % 'BOOLEAN'} END")),
]

_MACROS = [
    *_VARCHAR_CASTS,
    *_JSON_CASTS,
    # json_extract_scalar returns the scalar's own text in Trino (1.50 stays 1.50); DuckDB rewrites a number with a
    # fraction or exponent, so that one case is refused. An array or object is not a scalar: NULL.
    ("CREATE OR REPLACE MACRO trino_json_scalar(j, path) AS CASE "
     "WHEN json_type(j, path) IN ('OBJECT', 'ARRAY') THEN NULL "
     "WHEN json_type(j, path) = 'DOUBLE' THEN error('json_extract_scalar of the number ' || "
     "CAST(json_extract(j, path) AS VARCHAR) || ': Athena returns the number as written and the local engine "
     "cannot; CAST(json_extract(...) AS DOUBLE) compares it as a number') "
     "ELSE json_extract_string(j, path) END"),
    # Subscripts fail where Trino's do (ArraySubscriptOperator, MapSubscriptOperator); element_at gives NULL
    # (https://trino.io/docs/current/functions/array.html#subscript-operator).
    ("CREATE OR REPLACE MACRO trino_array_at(a, i) AS CASE WHEN a IS NULL OR i IS NULL THEN NULL "
     "WHEN i = 0 THEN error('SQL array indices start at 1') "
     "WHEN i < 0 THEN error('Array subscript is negative: ' || i) "
     "WHEN i > len(a) THEN error('Array subscript must be less than or equal to array length: ' || i || ' > ' "
     "|| len(a)) ELSE a[i] END"),
    ("CREATE OR REPLACE MACRO trino_element_at(a, i) AS CASE WHEN i = 0 THEN error('SQL array indices start at 1') "
     "ELSE a[i] END"),
    ("CREATE OR REPLACE MACRO trino_map_at(m, k) AS CASE WHEN m IS NULL OR k IS NULL THEN NULL "
     "WHEN NOT map_contains(m, k) THEN error('Key not present in map: ' || CAST(k AS VARCHAR)) ELSE m[k] END"),
    # substr: a start of 0 or before the beginning gives '' (TestStringFunctions.testSubstring); DuckDB gives the
    # whole string.
    ("CREATE OR REPLACE MACRO trino_substr(s, start) AS CASE WHEN s IS NULL OR start IS NULL THEN NULL "
     "WHEN start = 0 OR start < -length(s) THEN '' ELSE substring(s, start) END"),
    ("CREATE OR REPLACE MACRO trino_substr_for(s, start, n) AS CASE "
     "WHEN s IS NULL OR start IS NULL OR n IS NULL THEN NULL "
     "WHEN start = 0 OR n <= 0 OR start < -length(s) THEN '' ELSE substring(s, start, n) END"),
    # strpos(string, substring, instance): overlapping matches count, a negative instance counts from the end.
    ("CREATE OR REPLACE MACRO trino_strpos(s, sub, n) AS CASE WHEN s IS NULL OR sub IS NULL OR n IS NULL THEN NULL "
     "WHEN n = 0 THEN error('''instance'' must be a positive or negative number.') WHEN sub = '' THEN 1 "
     "ELSE coalesce(list_filter(range(1, length(s) + 1), lambda i: substring(s, i, length(sub)) = sub)[n], 0) END"),
    # split(string, delimiter, limit): at most limit elements, the last one holds the rest of the string.
    ("CREATE OR REPLACE MACRO trino_split(s, d, lim) AS CASE WHEN lim <= 0 THEN error('Limit must be positive') "
     "WHEN len(string_split(s, d)) <= lim THEN string_split(s, d) "
     "ELSE list_append(string_split(s, d)[1:lim - 1], array_to_string(string_split(s, d)[lim:], d)) END"),
    # split_part: a field past the last one is NULL (https://trino.io/docs/current/functions/string.html#split_part);
    # DuckDB gives '' there, and counts a negative index from the end where Trino fails.
    ("CREATE OR REPLACE MACRO trino_split_part(s, d, i) AS CASE "
     "WHEN i <= 0 THEN error('Index must be greater than zero') "
     "WHEN i > len(string_split(s, d)) THEN NULL ELSE split_part(s, d, i) END"),
    # upper maps code point by code point (Character.toUpperCase), so ß stays ß; DuckDB gives ẞ.
    ("CREATE OR REPLACE MACRO trino_upper(s) AS "
     "array_to_string(list_transform(string_split(s, 'ß'), lambda part: upper(part)), 'ß')"),
    # regexp_extract gives NULL when the pattern does not match; DuckDB gives ''.
    ("CREATE OR REPLACE MACRO trino_regexp_extract(s, p, g) AS "
     "CASE WHEN regexp_matches(s, p) THEN regexp_extract(s, p, g) END"),
    # from_unixtime(double) keeps milliseconds, rounded: Math.round(unixtime * 1000) (DateTimeFunctions).
    ("CREATE OR REPLACE MACRO trino_from_unixtime(x) AS "
     "to_timestamp(0) + to_milliseconds(CAST(floor(CAST(x AS DOUBLE) * 1000 + 0.5) AS BIGINT))"),
    # from_iso8601_timestamp keeps the string's offset as the value's zone, so hour(), date_trunc() and formats
    # work in it. The local engine holds UTC instants: a non-zero offset is refused where the zone would matter.
    ("CREATE OR REPLACE MACRO trino_from_iso8601_utc(s) AS CASE "
     "WHEN regexp_extract(s, 'T[0-9:.,]*([+-][0-9]{2}(:?[0-9]{2})?)$', 1) "
     "NOT IN ('', '+00', '-00', '+0000', '-0000', '+00:00', '-00:00') "
     "THEN error('from_iso8601_timestamp(''' || s || '''): Athena keeps the offset as the value''s time zone and "
     "computes fields, date_trunc() and formats in it; the local engine holds UTC only. Convert first: "
     "at_timezone(from_iso8601_timestamp(...), ''UTC'')') ELSE CAST(s AS TIMESTAMPTZ) END"),
]


def register(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ``trino_*`` macros on a connection."""
    for macro in _MACROS:
        con.execute(macro)
