-- SELECT bytes / packets AS per_packet, bytes / 2e0 AS half, -7 % 3 AS remainder FROM flow_logs
SELECT
  bytes // packets AS per_packet,
  bytes / 2e0 AS half,
  -7 % 3 AS remainder
FROM flow_logs;

-- SELECT CAST(json_extract(requestparameters, '$.groupId') AS VARCHAR) AS group_id FROM cloudtrail
SELECT
  TRINO_JSON_VARCHAR(requestparameters -> '$.groupId') AS group_id
FROM cloudtrail;

-- SELECT CAST(r['securityGroupRuleId'] AS VARCHAR) AS rule_id, CAST(element_at(r, 'fromPort') AS BIGINT) AS port, CAST(r['isEgress'] AS BOOLEAN) AS egress FROM cloudtrail CROSS JOIN UNNEST(CAST(json_extract(responseelements, '$.securityGroupRuleSet.items') AS ARRAY(MAP(VARCHAR, JSON)))) AS t(r)
SELECT
  TRINO_JSON_VARCHAR(TRINO_MAP_AT(r, 'securityGroupRuleId')) AS rule_id,
  TRINO_JSON_BIGINT(r['fromPort']) AS port,
  TRINO_JSON_BOOLEAN(TRINO_MAP_AT(r, 'isEgress')) AS egress
FROM cloudtrail
CROSS JOIN UNNEST(CAST(responseelements -> '$.securityGroupRuleSet.items' AS MAP(TEXT, JSON)[])) AS t(r);

-- SELECT CAST(json_parse(requestparameters) AS ARRAY(MAP(VARCHAR, BIGINT))) AS ports FROM cloudtrail
SELECT
  LIST_TRANSFORM(
    CAST(JSON(requestparameters) AS JSON[]),
    LAMBDA _e0 : MAP_FROM_ENTRIES(
      LIST_TRANSFORM(
        MAP_ENTRIES(CAST(_e0 AS MAP(TEXT, JSON))),
        LAMBDA _e1 : {'key': _e1.key, 'value': TRINO_JSON_BIGINT(_e1.value)}
      )
    )
  ) AS ports
FROM cloudtrail;

-- SELECT try_cast(useragent AS BIGINT) AS n, CAST(readonly AS BOOLEAN) AS ro, CAST(bytes * 1e0 AS BIGINT) AS b FROM cloudtrail CROSS JOIN flow_logs
SELECT
  TRINO_TRY_VARCHAR_BIGINT(useragent) AS n,
  TRINO_VARCHAR_BOOLEAN(readonly) AS ro,
  CAST(ROUND(bytes * 1e0) AS BIGINT) AS b
FROM cloudtrail
CROSS JOIN flow_logs;

-- SELECT date_diff('hour', from_unixtime(start), from_unixtime("end")) AS hours, date_add('day', 1, CAST(from_unixtime(start) AS DATE)) AS next_day FROM flow_logs
SELECT
  DATE_SUB('hour', TO_TIMESTAMP(start), TO_TIMESTAMP("end")) AS hours,
  CAST(CAST(TO_TIMESTAMP(start) AS DATE) + INTERVAL 1 DAY AS DATE) AS next_day
FROM flow_logs;

-- SELECT hour(from_iso8601_timestamp(eventtime)) AS h FROM cloudtrail WHERE from_iso8601_timestamp(eventtime) >= TIMESTAMP '2026-01-01 00:00:00 UTC'
SELECT
  HOUR(TRINO_FROM_ISO8601_UTC(eventtime)) AS h
FROM cloudtrail
WHERE
  CAST(eventtime AS TIMESTAMPTZ) >= CAST('2026-01-01 00:00:00 UTC' AS TIMESTAMPTZ);

-- SELECT from_unixtime(start / 1e3) AS t, at_timezone(from_unixtime(start), 'UTC') AS u FROM flow_logs
SELECT
  TRINO_FROM_UNIXTIME(start / 1e3) AS t,
  TO_TIMESTAMP(start) AS u
FROM flow_logs;

-- SELECT date_format(from_unixtime(start), '%Y-%m-%d %H:%i:%s') AS d, format_datetime(from_unixtime(start), 'yyyy-MM-dd''T''HH:mm:ssZ') AS f FROM flow_logs
SELECT
  STRFTIME(TO_TIMESTAMP(start), '%Y-%m-%d %H:%M:%S') AS d,
  STRFTIME(TO_TIMESTAMP(start), '%Y-%m-%dT%H:%M:%S+0000') AS f
FROM flow_logs;

-- SELECT substr(srcaddr, -3) AS tail, substr(srcaddr, 1, 4) AS head, strpos(srcaddr, '.', 2) AS second_dot, split(srcaddr, '.', 2) AS parts, split_part(srcaddr, '.', 5) AS fifth FROM flow_logs
SELECT
  TRINO_SUBSTR(srcaddr, -3) AS tail,
  TRINO_SUBSTR_FOR(srcaddr, 1, 4) AS head,
  TRINO_STRPOS(srcaddr, '.', 2) AS second_dot,
  TRINO_SPLIT(srcaddr, '.', 2) AS parts,
  TRINO_SPLIT_PART(srcaddr, '.', 5) AS fifth
FROM flow_logs;

-- SELECT regexp_extract(useragent, 'aws-cli/([0-9.]+)', 1) AS v, regexp_replace(useragent, '(\w+)/', '$1 ') AS u, json_extract_scalar(requestparameters, '$.groupId') AS g FROM cloudtrail
SELECT
  TRINO_REGEXP_EXTRACT(useragent, 'aws-cli/([0-9.]+)', 1) AS v,
  REGEXP_REPLACE(useragent, '(\w+)/', '\1 ', 'g') AS u,
  TRINO_JSON_SCALAR(requestparameters, '$.groupId') AS g
FROM cloudtrail;

-- SELECT ARRAY[1, 2][2] AS second, element_at(ARRAY[1, 2], -1) AS last, cardinality(MAP(ARRAY['a'], ARRAY[1])) AS n, reduce(ARRAY[1, 2], 0, (s, x) -> s + x, s -> s * 10) AS r
SELECT
  TRINO_ARRAY_AT([1, 2], 2) AS second,
  TRINO_ELEMENT_AT([1, 2], -1) AS last,
  CARDINALITY(MAP(['a'], [1])) AS n,
  LIST_EXTRACT(
    LIST_TRANSFORM([LIST_REDUCE([1, 2], LAMBDA s, x : s + x, 0)], LAMBDA s : s * 10),
    1
  ) AS r;

-- SELECT 1, srcAddr, count(*) FROM flow_logs GROUP BY srcaddr
SELECT
  1 AS _col0,
  srcAddr AS srcaddr,
  COUNT(*) AS _col2
FROM flow_logs
GROUP BY
  srcaddr;

