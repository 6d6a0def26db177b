-- Groups on no interface (default groups excluded), with their ingress rule count and who references them.
WITH ingress AS (
  SELECT group_id, count(*) AS ingress_rules
  FROM sg_rules
  WHERE NOT is_egress
  GROUP BY group_id
),
referrers AS (
  SELECT referenced_group_id AS group_id, array_sort(array_agg(DISTINCT group_id)) AS referenced_by
  FROM sg_rules
  WHERE referenced_group_id IS NOT NULL AND referenced_group_id <> group_id
  GROUP BY referenced_group_id
)
SELECT
  g.account_id,
  g.region,
  g.group_id,
  g.group_name,
  g.vpc_id,
  coalesce(i.ingress_rules, 0) AS ingress_rules,
  coalesce(r.referenced_by, CAST(ARRAY[] AS ARRAY(VARCHAR))) AS referenced_by,
  'low' AS severity
FROM sg_groups AS g
LEFT JOIN ingress AS i ON i.group_id = g.group_id
LEFT JOIN referrers AS r ON r.group_id = g.group_id
WHERE g.group_name <> 'default'
  AND NOT EXISTS (SELECT 1 FROM eni_groups AS e WHERE e.group_id = g.group_id)
ORDER BY g.account_id ASC, g.region ASC, g.group_id ASC
