/* Inbound: dstaddr is one of the interface's own addresses (inventory), or else flow_direction says ingress. */
/* Public: outside 10/8, 172.16/12, 192.168/16, 100.64/10, 127/8, 169.254/16, 0/8, fc00::/7, fe80::/10, ::1. */
WITH inbound AS (
  SELECT
    q.interface_id,
    q.dstport,
    q.protocol,
    q.srcaddr,
    q.flows
  FROM query_result AS q
  WHERE
    q.flow_direction = 'ingress'
    OR EXISTS(
      SELECT
        1
      FROM eni_addresses AS a
      WHERE
        a.interface_id = q.interface_id AND a.address = q.dstaddr
    )
), per_source AS (
  SELECT
    interface_id,
    dstport,
    protocol,
    srcaddr,
    SUM(flows) AS flows,
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
    ) AS is_public
  FROM inbound
  GROUP BY
    interface_id,
    dstport,
    protocol,
    srcaddr
), per_port AS (
  SELECT
    interface_id,
    dstport,
    protocol,
    SUM(flows) AS accepted_flows,
    COUNT(*) AS distinct_sources,
    COUNT_IF(is_public) AS public_sources,
    ARRAY_SLICE(ARRAY_AGG(srcaddr ORDER BY flows DESC, srcaddr ASC), 1, 1 + 5 - 1) AS sample_sources
  FROM per_source
  GROUP BY
    interface_id,
    dstport,
    protocol
)
SELECT
  interface_id,
  dstport,
  protocol,
  accepted_flows,
  distinct_sources,
  public_sources,
  sample_sources,
  CASE
    WHEN public_sources = 0
    THEN NULL
    WHEN ARRAY_CONTAINS($allowed_public_ports, dstport)
    THEN 'info'
    WHEN ARRAY_CONTAINS($sensitive_ports, dstport)
    THEN 'high'
    ELSE 'medium'
  END AS severity
FROM per_port
ORDER BY
  public_sources DESC,
  accepted_flows DESC,
  interface_id ASC,
  dstport ASC,
  protocol ASC
