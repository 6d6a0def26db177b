/* Ingress rule versions open to 0.0.0.0/0 or ::/0 that the timeline closes inside the window (revoked, narrowed, */
/* group deleted), with the public sources whose ACCEPTed inbound flows on the rule's protocol and ports reached an */
/* interface carrying the group while it was open. Their flows come from the timeline's flow_times: every interface */
/* of a group that changed inside the window is in it. */
/* Public: outside 10/8, 172.16/12, 192.168/16, 100.64/10, 127/8, 169.254/16, 0/8, fc00::/7, fe80::/10, ::1. */
WITH closed AS (
  SELECT
    r.rule_id,
    r.group_id,
    r.protocol,
    r.from_port,
    r.to_port,
    COALESCE(r.cidr_ipv4, r.cidr_ipv6) AS source,
    r.valid_from AS opened_at,
    r.valid_until AS closed_at,
    r.opened_by,
    r.closed_by,
    CASE
      WHEN r.valid_from IS NULL OR r.valid_from < $since
      THEN $since
      ELSE r.valid_from
    END AS open_from
  FROM sg_rule_versions AS r
  WHERE
    NOT r.is_egress
    AND (
      r.cidr_ipv4 LIKE '%/0' OR r.cidr_ipv6 LIKE '%/0'
    )
    AND NOT r.valid_until IS NULL
    AND r.valid_until > $since
    AND r.valid_until <= $until
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
    c.group_id,
    c.rule_id,
    c.opened_at,
    i.srcaddr,
    i.flows
  FROM closed AS c
  JOIN eni_group_versions AS g
    ON g.group_id = c.group_id
  JOIN inbound AS i
    ON i.interface_id = g.interface_id
  WHERE
    i."at" >= c.open_from
    AND i."at" < c.closed_at
    AND (
      g.valid_from IS NULL OR g.valid_from <= i."at"
    )
    AND (
      g.valid_until IS NULL OR i."at" < g.valid_until
    )
    AND (
      c.protocol = -1
      OR (
        c.protocol = i.protocol
        AND (
          c.from_port = -1 OR i.dstport BETWEEN c.from_port AND c.to_port
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
), came_through AS (
  SELECT
    m.group_id,
    m.rule_id,
    m.opened_at,
    COUNT(DISTINCT m.srcaddr) AS public_sources,
    CAST(SUM(m.flows) AS BIGINT) AS flows
  FROM matched AS m
  JOIN public_addresses AS p
    ON p.srcaddr = m.srcaddr
  GROUP BY
    m.group_id,
    m.rule_id,
    m.opened_at
)
SELECT
  c.rule_id,
  c.group_id,
  c.protocol,
  c.from_port,
  c.to_port,
  c.source,
  c.opened_at,
  c.closed_at,
  c.opened_by,
  c.closed_by,
  CASE WHEN f.read THEN COALESCE(t.public_sources, 0) END AS public_sources_during,
  CASE WHEN f.read THEN COALESCE(t.flows, 0) END AS public_flows_during,
  CASE
    WHEN (
      c.protocol = -1
      OR (
        c.protocol IN (6, 17)
        AND (
          c.from_port = -1
          OR EXISTS(
            SELECT
              1
            FROM UNNEST($sensitive_ports) AS p(port)
            WHERE
              p.port BETWEEN c.from_port AND c.to_port
          )
        )
      )
    )
    THEN CASE
      WHEN COALESCE(t.public_sources, 0) > 0 OR NOT f.read
      THEN 'high'
      ELSE 'medium'
    END
    ELSE 'low'
  END AS severity
FROM closed AS c
CROSS JOIN (
  SELECT
    EXISTS(
      SELECT
        1
      FROM timeline_inputs
      WHERE
        source = 'flow_logs'
    ) AS read
) AS f
LEFT JOIN came_through AS t
  ON t.group_id = c.group_id
  AND t.rule_id IS NOT DISTINCT FROM c.rule_id
  AND t.opened_at IS NOT DISTINCT FROM c.opened_at
ORDER BY
  c.closed_at ASC,
  c.group_id ASC,
  c.rule_id ASC
