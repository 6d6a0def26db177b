/* ACCEPTed records in the lookback, kept per source, destination and port, so the second phase can match */
/* them against the rules; plus one coverage row per interface that logged anything at all (from the flow */
/* summary of the lookback window). */
SELECT
  interface_id,
  dstaddr,
  flow_direction,
  protocol,
  dstport,
  srcaddr,
  CAST(SUM(flows) AS BIGINT) AS flows
FROM flow_summary
WHERE
  action = 'ACCEPT' AND log_status = 'OK'
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
  CAST(SUM(flows) AS BIGINT) AS flows
FROM flow_summary
WHERE
  log_status = 'OK'
GROUP BY
  interface_id
