-- Inbound: dstaddr is one of the interface's own addresses (inventory), or else flow_direction says ingress.
-- World-open: an attached group's ingress rule admits the port from 0.0.0.0/0 or ::/0 (rows with no traffic too).
-- Public: outside 10/8, 172.16/12, 192.168/16, 100.64/10, 127/8, 169.254/16, 0/8, fc00::/7, fe80::/10, ::1.
WITH inbound AS (
  SELECT q.interface_id, q.dstport, q.protocol, q.srcaddr, q.flows
  FROM query_result AS q
  WHERE q.flow_direction = 'ingress'
     OR EXISTS (
       SELECT 1 FROM eni_addresses AS a
       WHERE a.interface_id = q.interface_id AND a.address = q.dstaddr
     )
),
per_source AS (
  SELECT
    interface_id,
    dstport,
    protocol,
    srcaddr,
    sum(flows) AS flows,
    NOT (
      contains('10.0.0.0/8', CAST(srcaddr AS IPADDRESS))
      OR contains('172.16.0.0/12', CAST(srcaddr AS IPADDRESS))
      OR contains('192.168.0.0/16', CAST(srcaddr AS IPADDRESS))
      OR contains('100.64.0.0/10', CAST(srcaddr AS IPADDRESS))
      OR contains('127.0.0.0/8', CAST(srcaddr AS IPADDRESS))
      OR contains('169.254.0.0/16', CAST(srcaddr AS IPADDRESS))
      OR contains('0.0.0.0/8', CAST(srcaddr AS IPADDRESS))
      OR contains('fc00::/7', CAST(srcaddr AS IPADDRESS))
      OR contains('fe80::/10', CAST(srcaddr AS IPADDRESS))
      OR contains('::1/128', CAST(srcaddr AS IPADDRESS))
    ) AS is_public
  FROM inbound
  GROUP BY interface_id, dstport, protocol, srcaddr
),
per_port AS (
  -- The sample is the five sources with the most flows, ties by address: the smallest (-flows, address). A
  -- bounded top-n per port, where array_agg(... ORDER BY ...) over all of a port's sources holds them all in
  -- memory (it cannot spill: tens of millions of rows at 100M records) and a ranking window sorts them all.
  -- A source without an address is counted but never sampled.
  SELECT
    interface_id,
    dstport,
    protocol,
    sum(flows) AS accepted_flows,
    count(*) AS distinct_sources,
    count_if(is_public) AS public_sources,
    coalesce(min_by(srcaddr, ROW(-flows, srcaddr), 5), CAST(ARRAY[] AS ARRAY(VARCHAR))) AS sample_sources
  FROM per_source
  GROUP BY interface_id, dstport, protocol
),
world_rules AS (
  -- ingress rules open to 0.0.0.0/0 or ::/0, on the interfaces that carry their group
  SELECT eg.interface_id, r.protocol, r.from_port, r.to_port
  FROM sg_rules AS r
  JOIN eni_groups AS eg ON eg.group_id = r.group_id
  WHERE NOT r.is_egress AND (r.cidr_ipv4 LIKE '%/0' OR r.cidr_ipv6 LIKE '%/0')
),
world_ports AS (
  -- the ports those rules open that this check cares about: a well-known or sensitive port a rule names
  -- alone, and every sensitive port a range (or an all-traffic rule, counted as TCP) covers
  SELECT interface_id, from_port AS dstport, protocol
  FROM world_rules
  WHERE protocol IN (6, 17) AND from_port = to_port
    AND (from_port BETWEEN 1 AND 1023 OR contains(:sensitive_ports, from_port))
  UNION
  SELECT w.interface_id, p.port AS dstport, CASE WHEN w.protocol = -1 THEN 6 ELSE w.protocol END AS protocol
  FROM world_rules AS w
  CROSS JOIN UNNEST(:sensitive_ports) AS p(port)
  WHERE w.protocol = -1
     OR (w.protocol IN (6, 17) AND (w.from_port = -1 OR p.port BETWEEN w.from_port AND w.to_port))
),
rows AS (
  SELECT
    t.interface_id, t.dstport, t.protocol, t.accepted_flows, t.distinct_sources, t.public_sources, t.sample_sources,
    EXISTS (
      SELECT 1 FROM world_rules AS w
      WHERE w.interface_id = t.interface_id
        AND (w.protocol = -1 OR (w.protocol = t.protocol AND (w.from_port = -1 OR t.dstport BETWEEN w.from_port AND w.to_port)))
    ) AS world_open
  FROM per_port AS t
  UNION ALL
  SELECT w.interface_id, w.dstport, w.protocol, 0, 0, 0, CAST(ARRAY[] AS ARRAY(VARCHAR)), true
  FROM world_ports AS w
  WHERE NOT EXISTS (
    SELECT 1 FROM per_port AS t
    WHERE t.interface_id = w.interface_id AND t.dstport = w.dstport AND t.protocol = w.protocol
  )
)
SELECT
  interface_id,
  dstport,
  protocol,
  accepted_flows,
  distinct_sources,
  public_sources,
  sample_sources,
  world_open,
  CASE
    WHEN public_sources > 0 AND contains(:allowed_public_ports, dstport) THEN 'info'
    WHEN public_sources > 0 AND contains(:sensitive_ports, dstport) THEN 'high'
    WHEN public_sources > 0 THEN 'medium'
    WHEN world_open AND contains(:allowed_public_ports, dstport) THEN NULL
    WHEN world_open AND contains(:sensitive_ports, dstport) THEN 'medium'
    WHEN world_open THEN 'low'
  END AS severity
FROM rows
ORDER BY public_sources DESC, accepted_flows DESC, world_open DESC, interface_id ASC, dstport ASC, protocol ASC
