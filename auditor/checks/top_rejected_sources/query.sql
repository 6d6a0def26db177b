-- REJECT records in the window, in all directions, grouped by source (from the window's flow summary).
SELECT
  srcaddr,
  sum(flows) AS rejected_flows,
  sum(packets) AS packets,
  sum(bytes) AS bytes,
  count(DISTINCT dstport) AS distinct_dstports,
  from_unixtime(min(first_start)) AS first_seen,
  from_unixtime(max(last_start)) AS last_seen
FROM flow_summary
WHERE action = 'REJECT'
  AND log_status = 'OK'
GROUP BY srcaddr
ORDER BY rejected_flows DESC, srcaddr ASC
LIMIT :top_n
