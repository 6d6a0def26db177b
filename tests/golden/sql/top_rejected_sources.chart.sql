/* Rejected records per hour (or day, as :bucket says), the five most rejected sources apart and the rest as "other". */
WITH per_bucket AS (
  SELECT
    DATE_TRUNC($bucket, TO_TIMESTAMP(start_hour)) AS bucket,
    srcaddr,
    CAST(SUM(flows) AS BIGINT) AS flows
  FROM flow_summary
  WHERE
    action = 'REJECT' AND log_status = 'OK'
  GROUP BY
    DATE_TRUNC($bucket, TO_TIMESTAMP(start_hour)),
    srcaddr
), top_sources AS (
  SELECT
    srcaddr
  FROM per_bucket
  GROUP BY
    srcaddr
  ORDER BY
    CAST(SUM(flows) AS BIGINT) DESC,
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
  CAST(SUM(flows) AS BIGINT) AS flows
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
