/* Severity: a finding needs min_flows rejected records; medium when it probed scan_ports ports or more. */
SELECT
  srcaddr,
  rejected_flows,
  packets,
  bytes,
  distinct_dstports,
  first_seen,
  last_seen,
  CASE
    WHEN rejected_flows < $min_flows
    THEN NULL
    WHEN distinct_dstports >= $scan_ports
    THEN 'medium'
    ELSE 'low'
  END AS severity
FROM query_result
ORDER BY
  rejected_flows DESC,
  srcaddr ASC
