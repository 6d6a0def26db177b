-- Inbound: dstaddr is one of the interface's own addresses (inventory), or else flow_direction says ingress.
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
  SELECT
    interface_id,
    dstport,
    protocol,
    sum(flows) AS accepted_flows,
    count(*) AS distinct_sources,
    count_if(is_public) AS public_sources,
    slice(array_agg(srcaddr ORDER BY flows DESC, srcaddr ASC), 1, 5) AS sample_sources
  FROM per_source
  GROUP BY interface_id, dstport, protocol
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
    WHEN public_sources = 0 THEN NULL
    WHEN contains(:allowed_public_ports, dstport) THEN 'info'
    WHEN contains(:sensitive_ports, dstport) THEN 'high'
    ELSE 'medium'
  END AS severity
FROM per_port
ORDER BY public_sources DESC, accepted_flows DESC, interface_id ASC, dstport ASC, protocol ASC
