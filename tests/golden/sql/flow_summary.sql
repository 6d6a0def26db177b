/* The window's flow summary: every flow-log check reads this table (flow_summary) instead of the records, so a */
/* run reads the window's flow logs once. One row per account, region, interface, direction, source, destination, */
/* destination port, protocol, action, log status and hour of the record's start; source ports are dropped. */
/* Counts, sums, minima and maxima of the rows merge exactly into any coarser grouping, and the source and */
/* destination addresses and ports are keys, so distinct counts over them stay exact. */
/* Athena materialises it once per run as Parquet (CREATE TABLE AS SELECT), the local engine as a DuckDB table. */
SELECT
  account_id,
  region,
  interface_id,
  flow_direction,
  srcaddr,
  dstaddr,
  dstport,
  protocol,
  action,
  log_status,
  start - start % 3600 AS start_hour,
  COUNT(*) AS flows,
  CAST(SUM(packets) AS BIGINT) AS packets,
  CAST(SUM(bytes) AS BIGINT) AS bytes,
  MIN(start) AS first_start,
  MAX(start) AS last_start
FROM flow_logs
WHERE
  start >= $since_s AND start < $until_s
GROUP BY
  account_id,
  region,
  interface_id,
  flow_direction,
  srcaddr,
  dstaddr,
  dstport,
  protocol,
  action,
  log_status,
  start - start % 3600
