/* Internet sources REJECTed inbound in the window that also got in (an inbound TCP/UDP ACCEPT on a port outside */
/* allowed_public_ports) or called the AWS API (CloudTrail's sourceIPAddress) in the window. */
/* Inbound: flow_direction says ingress, or the record has none (a format without ${flow-direction}) and its */
/* source is public, which an egress record's source (our own private address) is not. */
/* Public: outside 10/8, 172.16/12, 192.168/16, 100.64/10, 127/8, 169.254/16, 0/8, fc00::/7, fe80::/10, ::1. */
/* A reply to a connection we opened (from a well-known port to a port above 1023) is not a source getting in. */
WITH inbound AS (
  SELECT
    srcaddr,
    srcport,
    dstport,
    protocol,
    interface_id,
    action,
    start
  FROM flow_logs
  WHERE
    log_status = 'OK'
    AND start >= $since_s
    AND start < $until_s
    AND action IN ('ACCEPT', 'REJECT')
    AND (
      flow_direction = 'ingress' OR flow_direction IS NULL
    )
    AND NOT srcaddr IS NULL
), rejected AS (
  SELECT
    srcaddr,
    COUNT(*) AS rejected_flows,
    COUNT(DISTINCT dstport) AS rejected_ports,
    MIN(start) AS first_start,
    MAX(start) AS last_start
  FROM inbound
  WHERE
    action = 'REJECT'
  GROUP BY
    srcaddr
), accepted AS (
  SELECT
    srcaddr,
    COUNT_IF(NOT ARRAY_CONTAINS($allowed_public_ports, dstport)) AS accepted_flows,
    COUNT_IF(
      NOT ARRAY_CONTAINS($allowed_public_ports, dstport)
      AND ARRAY_CONTAINS($sensitive_ports, dstport)
    ) AS sensitive_flows,
    COUNT_IF(ARRAY_CONTAINS($allowed_public_ports, dstport)) AS allowed_flows,
    LIST_SORT(
      ARRAY_AGG(
        DISTINCT CASE WHEN protocol = 6 THEN 'tcp/' ELSE 'udp/' END || CAST(dstport AS TEXT)
      ) FILTER(WHERE
        NOT ARRAY_CONTAINS($allowed_public_ports, dstport))
    ) AS accepted_ports,
    LIST_SORT(
      ARRAY_AGG(DISTINCT interface_id) FILTER(WHERE
        NOT ARRAY_CONTAINS($allowed_public_ports, dstport))
    ) AS accepted_interfaces,
    MIN(start) FILTER(WHERE
      NOT ARRAY_CONTAINS($allowed_public_ports, dstport)) AS first_start,
    MAX(start) FILTER(WHERE
      NOT ARRAY_CONTAINS($allowed_public_ports, dstport)) AS last_start
  FROM inbound
  WHERE
    action = 'ACCEPT'
    AND protocol IN (6, 17)
    AND NOT (
      srcport BETWEEN 1 AND 1023 AND dstport > 1023
    )
    AND srcaddr IN (
      SELECT
        srcaddr
      FROM rejected
    )
  GROUP BY
    srcaddr
), api AS (
  SELECT
    sourceipaddress AS srcaddr,
    COUNT(*) AS api_events,
    COUNT_IF(NOT errorcode IS NULL) AS api_failed_events,
    LIST_SORT(
      ARRAY_AGG(
        DISTINCT COALESCE(
          useridentity.arn,
          useridentity.sessioncontext.sessionissuer.arn,
          useridentity.invokedby,
          useridentity.principalid
        )
      )
    ) AS api_actors,
    MIN(CAST(eventtime AS TIMESTAMPTZ)) AS first_call,
    MAX(CAST(eventtime AS TIMESTAMPTZ)) AS last_call
  FROM cloudtrail
  WHERE
    CAST(eventtime AS TIMESTAMPTZ) >= $since
    AND CAST(eventtime AS TIMESTAMPTZ) < $until
    AND sourceipaddress IN (
      SELECT
        srcaddr
      FROM rejected
    )
  GROUP BY
    sourceipaddress
), probing AS (
  /* rejected sources that were also accepted or called the API: the few the public test below has to look at. */
  /* The test costs about 30 microseconds a source: run on every rejected source it was most of the check's time. */
  SELECT
    r.*
  FROM rejected AS r
  WHERE
    r.srcaddr IN (
      SELECT
        srcaddr
      FROM accepted
    )
    OR r.srcaddr IN (
      SELECT
        srcaddr
      FROM api
    )
)
SELECT
  r.srcaddr,
  r.rejected_flows,
  r.rejected_ports,
  COALESCE(a.accepted_flows, 0) AS accepted_flows,
  COALESCE(a.accepted_ports, CAST([] AS TEXT[])) AS accepted_ports,
  COALESCE(a.accepted_interfaces, CAST([] AS TEXT[])) AS accepted_interfaces,
  COALESCE(c.api_events, 0) AS api_events,
  COALESCE(c.api_failed_events, 0) AS api_failed_events,
  COALESCE(c.api_actors, CAST([] AS TEXT[])) AS api_actors,
  CASE
    WHEN TO_TIMESTAMP(
      CASE
        WHEN r.first_start IS NULL OR COALESCE(a.first_start, r.first_start) IS NULL
        THEN NULL
        ELSE LEAST(r.first_start, COALESCE(a.first_start, r.first_start))
      END
    ) IS NULL
    OR COALESCE(c.first_call, TO_TIMESTAMP(r.first_start)) IS NULL
    THEN NULL
    ELSE LEAST(
      TO_TIMESTAMP(
        CASE
          WHEN r.first_start IS NULL OR COALESCE(a.first_start, r.first_start) IS NULL
          THEN NULL
          ELSE LEAST(r.first_start, COALESCE(a.first_start, r.first_start))
        END
      ),
      COALESCE(c.first_call, TO_TIMESTAMP(r.first_start))
    )
  END AS first_seen,
  CASE
    WHEN TO_TIMESTAMP(
      CASE
        WHEN r.last_start IS NULL OR COALESCE(a.last_start, r.last_start) IS NULL
        THEN NULL
        ELSE GREATEST(r.last_start, COALESCE(a.last_start, r.last_start))
      END
    ) IS NULL
    OR COALESCE(c.last_call, TO_TIMESTAMP(r.last_start)) IS NULL
    THEN NULL
    ELSE GREATEST(
      TO_TIMESTAMP(
        CASE
          WHEN r.last_start IS NULL OR COALESCE(a.last_start, r.last_start) IS NULL
          THEN NULL
          ELSE GREATEST(r.last_start, COALESCE(a.last_start, r.last_start))
        END
      ),
      COALESCE(c.last_call, TO_TIMESTAMP(r.last_start))
    )
  END AS last_seen,
  COALESCE(a.allowed_flows, 0) AS allowed_flows,
  CASE
    WHEN COALESCE(a.sensitive_flows, 0) > 0
    OR COALESCE(c.api_events, 0) > COALESCE(c.api_failed_events, 0)
    THEN 'high'
    WHEN COALESCE(a.accepted_flows, 0) > 0 OR COALESCE(c.api_failed_events, 0) > 0
    THEN 'medium'
  END AS severity
FROM probing AS r
LEFT JOIN accepted AS a
  ON a.srcaddr = r.srcaddr
LEFT JOIN api AS c
  ON c.srcaddr = r.srcaddr
WHERE
  NOT (
    CIDR_CONTAINS('10.0.0.0/8', r.srcaddr)
    OR CIDR_CONTAINS('172.16.0.0/12', r.srcaddr)
    OR CIDR_CONTAINS('192.168.0.0/16', r.srcaddr)
    OR CIDR_CONTAINS('100.64.0.0/10', r.srcaddr)
    OR CIDR_CONTAINS('127.0.0.0/8', r.srcaddr)
    OR CIDR_CONTAINS('169.254.0.0/16', r.srcaddr)
    OR CIDR_CONTAINS('0.0.0.0/8', r.srcaddr)
    OR CIDR_CONTAINS('fc00::/7', r.srcaddr)
    OR CIDR_CONTAINS('fe80::/10', r.srcaddr)
    OR CIDR_CONTAINS('::1/128', r.srcaddr)
  )
ORDER BY
  severity ASC,
  accepted_flows DESC,
  api_events DESC,
  r.srcaddr ASC
