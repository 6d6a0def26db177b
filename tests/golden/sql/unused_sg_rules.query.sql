/* ACCEPTed records in the lookback, kept per source, destination and port, so the second phase can match */
/* them against the rules; plus one coverage row per interface that logged anything at all. */
SELECT
  interface_id,
  dstaddr,
  flow_direction,
  protocol,
  dstport,
  srcaddr,
  COUNT(*) AS flows
FROM flow_logs
WHERE
  action = 'ACCEPT' AND log_status = 'OK' AND start >= $since_s AND start < $until_s
GROUP BY
  interface_id,
  dstaddr,
  flow_direction,
  protocol,
  dstport,
  srcaddr
UNION ALL
SELECT
  interface_id,
  CAST(NULL AS TEXT) AS dstaddr,
  CAST(NULL AS TEXT) AS flow_direction,
  CAST(NULL AS BIGINT) AS protocol,
  CAST(NULL AS INT) AS dstport,
  CAST(NULL AS TEXT) AS srcaddr,
  COUNT(*) AS flows
FROM flow_logs
WHERE
  log_status = 'OK' AND start >= $since_s AND start < $until_s
GROUP BY
  interface_id
