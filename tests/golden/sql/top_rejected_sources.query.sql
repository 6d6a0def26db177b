/* REJECT records in the window, in all directions, grouped by source (from the window's flow summary). */
SELECT
  srcaddr,
  CAST(SUM(flows) AS BIGINT) AS rejected_flows,
  CAST(SUM(packets) AS BIGINT) AS packets,
  CAST(SUM(bytes) AS BIGINT) AS bytes,
  COUNT(DISTINCT dstport) AS distinct_dstports,
  TO_TIMESTAMP(MIN(first_start)) AS first_seen,
  TO_TIMESTAMP(MAX(last_start)) AS last_seen
FROM flow_summary
WHERE
  action = 'REJECT' AND log_status = 'OK'
GROUP BY
  srcaddr
ORDER BY
  rejected_flows DESC,
  srcaddr ASC
LIMIT $top_n
