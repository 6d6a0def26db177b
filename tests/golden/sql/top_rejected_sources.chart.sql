/* Rejected records per hour (or day, as :bucket says), the five most rejected sources apart and the rest as "other". */
WITH per_bucket AS (
  SELECT
    DATE_TRUNC($bucket, TO_TIMESTAMP(start)) AS bucket,
    srcaddr,
    COUNT(*) AS flows
  FROM flow_logs
  WHERE
    action = 'REJECT' AND log_status = 'OK' AND start >= $since_s AND start < $until_s
  GROUP BY
    DATE_TRUNC($bucket, TO_TIMESTAMP(start)),
    srcaddr
), top_sources AS (
  SELECT
    srcaddr
  FROM per_bucket
  GROUP BY
    srcaddr
  ORDER BY
    SUM(flows) DESC,
    srcaddr ASC
  LIMIT 5
)
SELECT
  bucket,
  CASE
    WHEN srcaddr IN (
      SELECT
        srcaddr
      FROM top_sources
    )
    THEN srcaddr
    ELSE 'other'
  END AS source,
  SUM(flows) AS flows
FROM per_bucket
GROUP BY
  bucket,
  CASE
    WHEN srcaddr IN (
      SELECT
        srcaddr
      FROM top_sources
    )
    THEN srcaddr
    ELSE 'other'
  END
ORDER BY
  bucket ASC,
  source ASC
