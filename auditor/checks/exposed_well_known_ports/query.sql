-- ACCEPTed TCP/UDP records in the window to well-known or sensitive ports, kept per source and per
-- destination address so the second phase can decide, with the inventory, which ones were inbound
-- (from the window's flow summary).
SELECT
  interface_id,
  dstaddr,
  flow_direction,
  dstport,
  protocol,
  srcaddr,
  sum(flows) AS flows
FROM flow_summary
WHERE action = 'ACCEPT'
  AND log_status = 'OK'
  AND protocol IN (6, 17)
  AND ((dstport BETWEEN 1 AND 1023) OR contains(:sensitive_ports, dstport))
GROUP BY interface_id, dstaddr, flow_direction, dstport, protocol, srcaddr
