/* Match inbound ACCEPTed traffic to ingress rules; rows are the rules nothing matched. */
WITH covered AS (
  SELECT DISTINCT
    interface_id
  FROM query_result
  WHERE
    srcaddr IS NULL
), own_addresses AS (
  SELECT DISTINCT
    interface_id,
    address
  FROM eni_addresses
), inbound AS (
  /* a join rather than a correlated EXISTS inside an OR: DuckDB would materialise every phase-1 row first. */
  /* DISTINCT: the rule matching below tests each (interface, protocol, port, source) once, however the rows */
  /* arrive (grouped per destination by Athena and Insights, one per record inside the local engine's query). */
  SELECT DISTINCT
    q.interface_id,
    q.protocol,
    q.dstport,
    q.srcaddr
  FROM query_result AS q
  LEFT JOIN own_addresses AS a
    ON a.interface_id = q.interface_id AND a.address = q.dstaddr
  WHERE
    NOT q.srcaddr IS NULL
    AND (
      q.flow_direction = 'ingress' OR NOT a.address IS NULL
    )
), ingress_rules AS (
  SELECT
    *
  FROM sg_rules
  WHERE
    NOT is_egress
), members AS (
  /* the addresses of the interfaces that carry each group: the sources a group reference admits */
  SELECT
    g.group_id,
    a.address
  FROM eni_groups AS g
  JOIN eni_addresses AS a
    ON a.interface_id = g.interface_id
), matched AS (
  SELECT DISTINCT
    r.rule_id
  FROM ingress_rules AS r
  JOIN eni_groups AS eg
    ON eg.group_id = r.group_id
  JOIN inbound AS i
    ON i.interface_id = eg.interface_id
  WHERE
    (
      r.protocol = -1 OR r.protocol = i.protocol
    )
    AND (
      NOT r.protocol IN (6, 17)
      OR r.from_port IS NULL
      OR r.from_port = -1
      OR i.dstport BETWEEN r.from_port AND r.to_port
    )
    AND (
      (
        NOT r.cidr_ipv4 IS NULL AND CIDR_CONTAINS(r.cidr_ipv4, i.srcaddr)
      )
      OR (
        NOT r.cidr_ipv6 IS NULL AND CIDR_CONTAINS(r.cidr_ipv6, i.srcaddr)
      )
      OR (
        NOT r.referenced_group_id IS NULL
        AND EXISTS(
          SELECT
            1
          FROM members AS m
          WHERE
            m.group_id = r.referenced_group_id AND m.address = i.srcaddr
        )
      )
    )
), coverage AS (
  /* per group: interfaces carrying it, and how many of them logged anything in the lookback */
  SELECT
    eg.group_id,
    COUNT(*) AS interfaces,
    COUNT(c.interface_id) AS covered_interfaces
  FROM eni_groups AS eg
  LEFT JOIN covered AS c
    ON c.interface_id = eg.interface_id
  GROUP BY
    eg.group_id
), facts AS (
  SELECT
    r.*,
    COALESCE(r.cidr_ipv4, r.cidr_ipv6, r.prefix_list_id, r.referenced_group_id) AS source,
    COALESCE(cv.interfaces, 0) AS interfaces,
    COALESCE(cv.covered_interfaces, 0) AS covered_interfaces,
    (
      r.cidr_ipv4 LIKE '%/0' OR r.cidr_ipv6 LIKE '%/0'
    ) AS world_open,
    (
      NOT r.referenced_group_id IS NULL
      AND NOT r.referenced_group_owner_id IS NULL
      AND NOT r.group_owner_id IS NULL
      AND r.referenced_group_owner_id <> r.group_owner_id
    ) AS cross_account
  FROM ingress_rules AS r
  LEFT JOIN coverage AS cv
    ON cv.group_id = r.group_id
  WHERE
    NOT r.rule_id IN (
      SELECT
        rule_id
      FROM matched
    )
), judged AS (
  SELECT
    *,
    CASE
      WHEN NOT prefix_list_id IS NULL
      THEN 'prefix list: its addresses are not in the inventory'
      WHEN cross_account
      THEN 'group referenced from another account'
      WHEN interfaces = 0
      THEN 'the group is attached to nothing'
      WHEN covered_interfaces = interfaces
      THEN 'its interfaces logged traffic and none matched'
      ELSE 'some of its interfaces have no flow records (no coverage)'
    END AS reason,
    CASE
      WHEN NOT prefix_list_id IS NULL OR cross_account
      THEN 'unknown'
      WHEN interfaces = 0 OR covered_interfaces = interfaces
      THEN 'unused'
      ELSE 'unknown'
    END AS verdict
  FROM facts
)
SELECT
  account_id,
  region,
  rule_id,
  group_id,
  protocol,
  from_port,
  to_port,
  source,
  verdict,
  reason,
  world_open,
  interfaces,
  covered_interfaces,
  CASE WHEN verdict <> 'unused' THEN NULL WHEN world_open THEN 'medium' ELSE 'low' END AS severity
FROM judged
ORDER BY
  verdict DESC,
  world_open DESC,
  group_id ASC,
  rule_id ASC
