-- Rejected records per hour (or day, as :bucket says), the five most rejected sources apart and the rest as "other".
WITH per_bucket AS (
  SELECT
    date_trunc(:bucket, from_unixtime(start_hour)) AS bucket,
    srcaddr,
    sum(flows) AS flows
  FROM flow_summary
  WHERE action = 'REJECT'
    AND log_status = 'OK'
  GROUP BY date_trunc(:bucket, from_unixtime(start_hour)), srcaddr
),
top_sources AS (
  SELECT srcaddr
  FROM per_bucket
  GROUP BY srcaddr
  ORDER BY sum(flows) DESC, srcaddr ASC
  LIMIT 5
)
SELECT
  bucket,
  CASE WHEN srcaddr IN (SELECT srcaddr FROM top_sources) THEN srcaddr ELSE 'other' END AS source,
  sum(flows) AS flows
FROM per_bucket
GROUP BY bucket, CASE WHEN srcaddr IN (SELECT srcaddr FROM top_sources) THEN srcaddr ELSE 'other' END
ORDER BY bucket ASC, source ASC
