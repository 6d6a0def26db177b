-- API calls in the window that stop, delete or reduce logging, failed ones included. Each name is paired with
-- its service: another service has a DeleteDetector too (Amazon Fraud Detector). UpdateDetector counts only when
-- it disables the detector; the hook reads that from the request.
SELECT
  eventid AS event_id,
  eventtime AS event_time,
  eventname AS event_name,
  coalesce(
    useridentity.arn,
    useridentity.sessioncontext.sessionissuer.arn,
    useridentity.invokedby,
    useridentity.principalid
  ) AS actor,
  sourceipaddress AS source_ip,
  useragent AS user_agent,
  errorcode AS error_code,
  recipientaccountid AS account_id,
  awsregion AS region,
  requestparameters AS request_parameters
FROM cloudtrail
WHERE from_iso8601_timestamp(eventtime) >= :since
  AND from_iso8601_timestamp(eventtime) < :until
  AND (
    (eventsource = 'ec2.amazonaws.com' AND eventname = 'DeleteFlowLogs')
    OR (
      eventsource = 'cloudtrail.amazonaws.com'
      AND eventname IN ('StopLogging', 'DeleteTrail', 'UpdateTrail', 'PutEventSelectors')
    )
    OR (
      eventsource = 'logs.amazonaws.com'
      AND eventname IN ('DeleteLogGroup', 'DeleteLogStream', 'PutRetentionPolicy')
    )
    OR (
      eventsource = 'config.amazonaws.com'
      AND eventname IN ('StopConfigurationRecorder', 'DeleteConfigurationRecorder', 'DeleteDeliveryChannel')
    )
    OR (eventsource = 'guardduty.amazonaws.com' AND eventname IN ('DeleteDetector', 'UpdateDetector'))
  )
ORDER BY event_time ASC, event_id ASC
