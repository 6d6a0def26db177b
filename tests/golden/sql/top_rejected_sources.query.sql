/* REJECT records in the window, in all directions, grouped by source. */
SELECT
  srcaddr,
  COUNT(*) AS rejected_flows,
  SUM(packets) AS packets,
  SUM(bytes) AS bytes,
  COUNT(DISTINCT dstport) AS distinct_dstports,
  TO_TIMESTAMP(MIN(start)) AS first_seen,
  TO_TIMESTAMP(MAX(start)) AS last_seen
FROM flow_logs
WHERE
  action = 'REJECT' AND log_status = 'OK' AND start >= $since_s AND start < $until_s
GROUP BY
  srcaddr
ORDER BY
  rejected_flows DESC,
  srcaddr ASC
LIMIT $top_n
