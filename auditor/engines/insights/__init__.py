"""CloudWatch Logs Insights: the local Insights engine (a parser and a compiler to DuckDB SQL) and the
CloudWatch Logs Insights engine."""
