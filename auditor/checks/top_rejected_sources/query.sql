-- REJECT records in the window, in all directions, grouped by source.
SELECT
  srcaddr,
  count(*) AS rejected_flows,
  sum(packets) AS packets,
  sum(bytes) AS bytes,
  count(DISTINCT dstport) AS distinct_dstports,
  from_unixtime(min(start)) AS first_seen,
  from_unixtime(max(start)) AS last_seen
FROM flow_logs
WHERE action = 'REJECT'
  AND log_status = 'OK'
  AND start >= :since_s
  AND start < :until_s
GROUP BY srcaddr
ORDER BY rejected_flows DESC, srcaddr ASC
LIMIT :top_n
