/* The engine query's events, each with what came through after it opened ingress (docs/timeline.md): the */
/* ingress rule versions the timeline says the event opened, the interfaces that carried their group, and the */
/* ACCEPTed inbound flows from public sources on the opened protocol and ports, from the event until the rule was */
/* revoked or narrowed, or the window ended. NULL for events that opened no ingress rule, and without flow logs. */
/* Public: outside 10/8, 172.16/12, 192.168/16, 100.64/10, 127/8, 169.254/16, 0/8, fc00::/7, fe80::/10, ::1. */
WITH opened AS (
  SELECT
    r.opened_event_id AS event_id,
    r.group_id,
    r.protocol,
    r.from_port,
    r.to_port,
    r.valid_from,
    r.valid_until
  FROM sg_rule_versions AS r
  WHERE
    NOT r.is_egress AND NOT r.opened_event_id IS NULL
), inbound AS (
  SELECT
    f.interface_id,
    f.dstport,
    f.protocol,
    f.srcaddr,
    f.flows,
    TO_TIMESTAMP(f.start) AS "at"
  FROM flow_times AS f
  WHERE
    (
      f.flow_direction = 'ingress'
      OR EXISTS(
        SELECT
          1
        FROM eni_addresses AS a
        WHERE
          a.interface_id = f.interface_id AND a.address = f.dstaddr
      )
    )
), matched AS (
  SELECT
    o.event_id,
    i.srcaddr,
    i.flows
  FROM opened AS o
  JOIN eni_group_versions AS g
    ON g.group_id = o.group_id
  JOIN inbound AS i
    ON i.interface_id = g.interface_id
  WHERE
    i."at" >= o.valid_from
    AND (
      o.valid_until IS NULL OR i."at" < o.valid_until
    )
    AND (
      g.valid_from IS NULL OR g.valid_from <= i."at"
    )
    AND (
      g.valid_until IS NULL OR i."at" < g.valid_until
    )
    AND (
      o.protocol = -1
      OR (
        o.protocol = i.protocol
        AND (
          o.from_port = -1 OR i.dstport BETWEEN o.from_port AND o.to_port
        )
      )
    )
), public_addresses AS (
  /* the public test once per distinct address that matched, not once per record */
  SELECT
    srcaddr
  FROM (
    SELECT DISTINCT
      srcaddr
    FROM matched
  ) AS a
  WHERE
    NOT (
      CIDR_CONTAINS('10.0.0.0/8', srcaddr)
      OR CIDR_CONTAINS('172.16.0.0/12', srcaddr)
      OR CIDR_CONTAINS('192.168.0.0/16', srcaddr)
      OR CIDR_CONTAINS('100.64.0.0/10', srcaddr)
      OR CIDR_CONTAINS('127.0.0.0/8', srcaddr)
      OR CIDR_CONTAINS('169.254.0.0/16', srcaddr)
      OR CIDR_CONTAINS('0.0.0.0/8', srcaddr)
      OR CIDR_CONTAINS('fc00::/7', srcaddr)
      OR CIDR_CONTAINS('fe80::/10', srcaddr)
      OR CIDR_CONTAINS('::1/128', srcaddr)
    )
), came_after AS (
  SELECT
    m.event_id,
    m.srcaddr,
    m.flows
  FROM matched AS m
  JOIN public_addresses AS p
    ON p.srcaddr = m.srcaddr
), per_event AS (
  SELECT
    o.event_id,
    CASE WHEN COUNT(*) = COUNT(o.valid_until) THEN MAX(o.valid_until) END AS open_until
  FROM opened AS o
  GROUP BY
    o.event_id
), sources AS (
  SELECT
    event_id,
    COUNT(DISTINCT srcaddr) AS public_sources,
    CAST(SUM(flows) AS BIGINT) AS public_flows,
    ARRAY_AGG(DISTINCT srcaddr) AS addresses
  FROM came_after
  GROUP BY
    event_id
), flows_read AS (
  SELECT
    EXISTS(
      SELECT
        1
      FROM timeline_inputs
      WHERE
        source = 'flow_logs'
    ) AS read
)
SELECT
  q.event_id,
  q.event_time,
  q.event_name,
  q.actor,
  q.source_ip,
  q.user_agent,
  q.error_code,
  q.account_id,
  q.region,
  q.request_parameters,
  q.response_elements,
  CASE WHEN NOT e.event_id IS NULL AND f.read THEN COALESCE(s.public_sources, 0) END AS public_sources_after,
  CASE WHEN NOT e.event_id IS NULL AND f.read THEN COALESCE(s.public_flows, 0) END AS public_flows_after,
  e.open_until,
  CASE
    WHEN NOT e.event_id IS NULL AND f.read
    THEN COALESCE(ARRAY_CONTAINS(s.addresses, q.source_ip), FALSE)
  END AS actor_ip_seen_after
FROM query_result AS q
CROSS JOIN flows_read AS f
LEFT JOIN per_event AS e
  ON e.event_id = q.event_id
LEFT JOIN sources AS s
  ON s.event_id = q.event_id
ORDER BY
  q.event_time ASC,
  q.event_id ASC
