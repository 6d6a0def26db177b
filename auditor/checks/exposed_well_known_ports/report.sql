-- Inbound: dstaddr is one of the interface's own addresses (inventory), or else flow_direction says ingress.
-- Public: outside 10/8, 172.16/12, 192.168/16, 100.64/10, 127/8, 169.254/16, 0/8, fc00::/7, fe80::/10, ::1.
-- Which rule let it in: the security-group timeline (docs/timeline.md) gives the rules each interface's groups had
-- at each time. The interfaces whose rules or groups changed inside the window come from the timeline's narrow
-- flow query (flow_times), one row per source and start time, so each source is judged by the rules of its
-- time; for every other interface the state at the window's start holds throughout.
WITH timed AS (
  SELECT q.interface_id, q.dstaddr, q.flow_direction, q.dstport, q.protocol, q.srcaddr, q.flows,
    CAST(NULL AS BIGINT) AS start
  FROM query_result AS q
  WHERE NOT EXISTS (SELECT 1 FROM timeline_changed AS c WHERE c.interface_id = q.interface_id)
  UNION ALL
  SELECT f.interface_id, f.dstaddr, f.flow_direction, f.dstport, f.protocol, f.srcaddr, f.flows, f.start
  FROM flow_times AS f
  WHERE f.protocol IN (6, 17) AND ((f.dstport BETWEEN 1 AND 1023) OR contains(:sensitive_ports, f.dstport))
),
inbound AS (
  SELECT q.interface_id, q.dstport, q.protocol, q.srcaddr, q.flows, q.start
  FROM timed AS q
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
points AS (
  -- each public source with the time its rules are judged at: its flows' start on an interface that changed,
  -- else the window's start
  SELECT interface_id, dstport, protocol, srcaddr, :since AS at
  FROM per_source
  WHERE is_public AND NOT EXISTS (SELECT 1 FROM timeline_changed AS c WHERE c.interface_id = per_source.interface_id)
  UNION
  SELECT i.interface_id, i.dstport, i.protocol, i.srcaddr, from_unixtime(i.start) AS at
  FROM inbound AS i
  JOIN per_source AS s
    ON s.interface_id = i.interface_id AND s.dstport = i.dstport AND s.protocol = i.protocol AND s.srcaddr = i.srcaddr
  WHERE s.is_public AND i.start IS NOT NULL
),
admits AS (
  -- the ingress rules in force at that time, of a group the interface carried then, that admit the source
  SELECT p.interface_id, p.dstport, p.protocol, p.srcaddr, p.at, coalesce(r.rule_id, r.group_id) AS rule_id,
    (r.cidr_ipv4 LIKE '%/0' OR r.cidr_ipv6 LIKE '%/0') AS world
  FROM points AS p
  JOIN eni_group_versions AS g
    ON g.interface_id = p.interface_id
   AND (g.valid_from IS NULL OR g.valid_from <= p.at) AND (g.valid_until IS NULL OR p.at < g.valid_until)
  JOIN sg_rule_versions AS r
    ON r.group_id = g.group_id AND NOT r.is_egress
   AND (r.valid_from IS NULL OR r.valid_from <= p.at) AND (r.valid_until IS NULL OR p.at < r.valid_until)
   AND (r.protocol = -1 OR (r.protocol = p.protocol AND (r.from_port = -1 OR p.dstport BETWEEN r.from_port AND r.to_port)))
   AND ((r.cidr_ipv4 IS NOT NULL AND contains(r.cidr_ipv4, CAST(p.srcaddr AS IPADDRESS)))
        OR (r.cidr_ipv6 IS NOT NULL AND contains(r.cidr_ipv6, CAST(p.srcaddr AS IPADDRESS))))
),
judged AS (
  -- per source and time: admitted by a world-open rule, by specific ranges only, or by nothing known; and if
  -- nothing, why: a state the timeline could not recover, or an interface the inventory does not hold
  SELECT
    p.interface_id, p.dstport, p.protocol, p.srcaddr,
    EXISTS (SELECT 1 FROM admits AS a WHERE a.interface_id = p.interface_id AND a.dstport = p.dstport
            AND a.protocol = p.protocol AND a.srcaddr = p.srcaddr AND a.at = p.at AND a.world) AS by_world,
    EXISTS (SELECT 1 FROM admits AS a WHERE a.interface_id = p.interface_id AND a.dstport = p.dstport
            AND a.protocol = p.protocol AND a.srcaddr = p.srcaddr AND a.at = p.at) AS admitted,
    EXISTS (
      SELECT 1 FROM sg_unknown AS u
      WHERE (u.valid_from IS NULL OR u.valid_from <= p.at) AND (u.valid_until IS NULL OR p.at < u.valid_until)
        AND ((u.kind = 'interface' AND u.resource_id = p.interface_id)
          OR (u.kind = 'group' AND EXISTS (
                SELECT 1 FROM eni_group_versions AS g
                WHERE g.interface_id = p.interface_id AND g.group_id = u.resource_id
                  AND (g.valid_from IS NULL OR g.valid_from <= p.at) AND (g.valid_until IS NULL OR p.at < g.valid_until))))
    ) AS state_unknown,
    EXISTS (SELECT 1 FROM eni_group_versions AS g WHERE g.interface_id = p.interface_id) AS in_inventory
  FROM points AS p
),
classes AS (
  SELECT
    interface_id,
    dstport,
    protocol,
    bool_or(by_world) AS reached_world,
    bool_or(NOT admitted) AS reached_unexplained,
    CASE
      WHEN bool_or(NOT admitted AND state_unknown) THEN 'state_unknown'
      WHEN bool_or(NOT admitted AND NOT in_inventory) THEN 'interface_not_in_inventory'
      WHEN bool_or(NOT admitted) THEN 'no_rule_admits'
    END AS unexplained_reason
  FROM judged
  GROUP BY interface_id, dstport, protocol
),
admitted_rules AS (
  SELECT interface_id, dstport, protocol, array_sort(array_agg(DISTINCT rule_id)) AS admitted_by
  FROM admits
  GROUP BY interface_id, dstport, protocol
),
world_rules AS (
  -- ingress rules open to 0.0.0.0/0 or ::/0 on an interface that carried their group, for the part of the
  -- window where both held
  SELECT g.interface_id, r.protocol, r.from_port, r.to_port
  FROM sg_rule_versions AS r
  JOIN eni_group_versions AS g ON g.group_id = r.group_id
  WHERE NOT r.is_egress AND (r.cidr_ipv4 LIKE '%/0' OR r.cidr_ipv6 LIKE '%/0')
    AND greatest(coalesce(r.valid_from, :since), coalesce(g.valid_from, :since), :since)
        < least(coalesce(r.valid_until, :until), coalesce(g.valid_until, :until), :until)
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
),
classified AS (
  SELECT
    r.*,
    coalesce(a.admitted_by, CAST(ARRAY[] AS ARRAY(VARCHAR))) AS admitted_by,
    CASE
      WHEN r.public_sources > 0 AND c.reached_world THEN 'reached_world_open'
      WHEN r.public_sources > 0 AND c.reached_unexplained THEN 'reached_unexplained'
      WHEN r.public_sources > 0 THEN 'reached_allow_listed'
      WHEN r.world_open THEN 'open_idle'
    END AS exposure,
    CASE WHEN r.public_sources > 0 AND NOT c.reached_world THEN c.unexplained_reason END AS unexplained_reason
  FROM rows AS r
  LEFT JOIN classes AS c ON c.interface_id = r.interface_id AND c.dstport = r.dstport AND c.protocol = r.protocol
  LEFT JOIN admitted_rules AS a ON a.interface_id = r.interface_id AND a.dstport = r.dstport AND a.protocol = r.protocol
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
  admitted_by,
  exposure,
  unexplained_reason,
  CASE
    WHEN public_sources > 0 AND contains(:allowed_public_ports, dstport) THEN 'info'
    WHEN contains(:allowed_public_ports, dstport) THEN NULL
    WHEN contains(:sensitive_ports, dstport) AND exposure IN ('reached_world_open', 'reached_unexplained') THEN 'high'
    WHEN contains(:sensitive_ports, dstport) AND exposure = 'open_idle' THEN 'medium'
    WHEN contains(:sensitive_ports, dstport) AND exposure = 'reached_allow_listed' THEN 'low'
    WHEN exposure IN ('reached_world_open', 'reached_unexplained') THEN 'medium'
    WHEN exposure IN ('reached_allow_listed', 'open_idle') THEN 'low'
  END AS severity
FROM classified
ORDER BY public_sources DESC, accepted_flows DESC, world_open DESC, interface_id ASC, dstport ASC, protocol ASC
