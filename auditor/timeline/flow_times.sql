-- The security-group timeline's narrow flow query: the ACCEPTed records of the interfaces whose admitted traffic
-- changed inside the window (a rule or group set changed there), per source and start time, so that the second
-- phase can tell which rules were in force when each source came in. Only those interfaces, never all traffic.
SELECT
  interface_id,
  dstaddr,
  flow_direction,
  dstport,
  protocol,
  srcaddr,
  start,
  count(*) AS flows
FROM flow_logs
WHERE action = 'ACCEPT'
  AND log_status = 'OK'
  AND start >= :since_s
  AND start < :until_s
  AND contains(:interface_ids, interface_id)
GROUP BY interface_id, dstaddr, flow_direction, dstport, protocol, srcaddr, start
