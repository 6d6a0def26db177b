-- Internet sources REJECTed inbound in the window that also got in (an inbound TCP/UDP ACCEPT on a port outside
-- allowed_public_ports) or called the AWS API (CloudTrail's sourceIPAddress) in the window.
-- Inbound: flow_direction says ingress, or the record has none (a format without ${flow-direction}) and its
-- source is public, which an egress record's source (our own private address) is not.
-- Public: outside 10/8, 172.16/12, 192.168/16, 100.64/10, 127/8, 169.254/16, 0/8, fc00::/7, fe80::/10, ::1.
-- A reply to a connection we opened (from a well-known port to a port above 1023) is not a source getting in.
WITH inbound AS (
  SELECT srcaddr, srcport, dstport, protocol, interface_id, action, start
  FROM flow_logs
  WHERE log_status = 'OK'
    AND start >= :since_s
    AND start < :until_s
    AND action IN ('ACCEPT', 'REJECT')
    AND (flow_direction = 'ingress' OR flow_direction IS NULL)
    AND srcaddr IS NOT NULL
),
rejected AS (
  SELECT
    srcaddr,
    count(*) AS rejected_flows,
    count(DISTINCT dstport) AS rejected_ports,
    min(start) AS first_start,
    max(start) AS last_start
  FROM inbound
  WHERE action = 'REJECT'
  GROUP BY srcaddr
),
accepted AS (
  SELECT
    srcaddr,
    count_if(NOT contains(:allowed_public_ports, dstport)) AS accepted_flows,
    count_if(NOT contains(:allowed_public_ports, dstport) AND contains(:sensitive_ports, dstport)) AS sensitive_flows,
    count_if(contains(:allowed_public_ports, dstport)) AS allowed_flows,
    array_sort(array_agg(DISTINCT CASE WHEN protocol = 6 THEN 'tcp/' ELSE 'udp/' END || CAST(dstport AS VARCHAR))
      FILTER (WHERE NOT contains(:allowed_public_ports, dstport))) AS accepted_ports,
    array_sort(array_agg(DISTINCT interface_id) FILTER (WHERE NOT contains(:allowed_public_ports, dstport)))
      AS accepted_interfaces,
    min(start) FILTER (WHERE NOT contains(:allowed_public_ports, dstport)) AS first_start,
    max(start) FILTER (WHERE NOT contains(:allowed_public_ports, dstport)) AS last_start
  FROM inbound
  WHERE action = 'ACCEPT'
    AND protocol IN (6, 17)
    AND NOT (srcport BETWEEN 1 AND 1023 AND dstport > 1023)
    AND srcaddr IN (SELECT srcaddr FROM rejected)
  GROUP BY srcaddr
),
api AS (
  SELECT
    sourceipaddress AS srcaddr,
    count(*) AS api_events,
    count_if(errorcode IS NOT NULL) AS api_failed_events,
    array_sort(array_agg(DISTINCT coalesce(
      useridentity.arn,
      useridentity.sessioncontext.sessionissuer.arn,
      useridentity.invokedby,
      useridentity.principalid
    ))) AS api_actors,
    min(from_iso8601_timestamp(eventtime)) AS first_call,
    max(from_iso8601_timestamp(eventtime)) AS last_call
  FROM cloudtrail
  WHERE from_iso8601_timestamp(eventtime) >= :since
    AND from_iso8601_timestamp(eventtime) < :until
    AND sourceipaddress IN (SELECT srcaddr FROM rejected)
  GROUP BY sourceipaddress
),
probing AS (
  -- rejected sources that were also accepted or called the API: the few the public test below has to look at.
  -- The test costs about 30 microseconds a source: run on every rejected source it was most of the check's time.
  SELECT r.*
  FROM rejected AS r
  WHERE r.srcaddr IN (SELECT srcaddr FROM accepted) OR r.srcaddr IN (SELECT srcaddr FROM api)
)
SELECT
  r.srcaddr,
  r.rejected_flows,
  r.rejected_ports,
  coalesce(a.accepted_flows, 0) AS accepted_flows,
  coalesce(a.accepted_ports, CAST(ARRAY[] AS ARRAY(VARCHAR))) AS accepted_ports,
  coalesce(a.accepted_interfaces, CAST(ARRAY[] AS ARRAY(VARCHAR))) AS accepted_interfaces,
  coalesce(c.api_events, 0) AS api_events,
  coalesce(c.api_failed_events, 0) AS api_failed_events,
  coalesce(c.api_actors, CAST(ARRAY[] AS ARRAY(VARCHAR))) AS api_actors,
  least(
    from_unixtime(least(r.first_start, coalesce(a.first_start, r.first_start))),
    coalesce(c.first_call, from_unixtime(r.first_start))
  ) AS first_seen,
  greatest(
    from_unixtime(greatest(r.last_start, coalesce(a.last_start, r.last_start))),
    coalesce(c.last_call, from_unixtime(r.last_start))
  ) AS last_seen,
  coalesce(a.allowed_flows, 0) AS allowed_flows,
  CASE
    WHEN coalesce(a.sensitive_flows, 0) > 0 OR coalesce(c.api_events, 0) > coalesce(c.api_failed_events, 0) THEN 'high'
    WHEN coalesce(a.accepted_flows, 0) > 0 OR coalesce(c.api_failed_events, 0) > 0 THEN 'medium'
  END AS severity
FROM probing AS r
LEFT JOIN accepted AS a ON a.srcaddr = r.srcaddr
LEFT JOIN api AS c ON c.srcaddr = r.srcaddr
WHERE NOT (
    contains('10.0.0.0/8', CAST(r.srcaddr AS IPADDRESS))
    OR contains('172.16.0.0/12', CAST(r.srcaddr AS IPADDRESS))
    OR contains('192.168.0.0/16', CAST(r.srcaddr AS IPADDRESS))
    OR contains('100.64.0.0/10', CAST(r.srcaddr AS IPADDRESS))
    OR contains('127.0.0.0/8', CAST(r.srcaddr AS IPADDRESS))
    OR contains('169.254.0.0/16', CAST(r.srcaddr AS IPADDRESS))
    OR contains('0.0.0.0/8', CAST(r.srcaddr AS IPADDRESS))
    OR contains('fc00::/7', CAST(r.srcaddr AS IPADDRESS))
    OR contains('fe80::/10', CAST(r.srcaddr AS IPADDRESS))
    OR contains('::1/128', CAST(r.srcaddr AS IPADDRESS))
  )
ORDER BY severity ASC NULLS LAST, accepted_flows DESC, api_events DESC, r.srcaddr ASC
