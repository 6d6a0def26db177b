-- Network ACL API calls in the window, failed ones included, oldest first: the hook replays them in order, so a
-- Delete or Replace can name the entry an earlier call of the window set.
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
  errorcode AS error_code,
  recipientaccountid AS account_id,
  awsregion AS region,
  requestparameters AS request_parameters,
  responseelements AS response_elements
FROM cloudtrail
WHERE eventsource = 'ec2.amazonaws.com'
  AND from_iso8601_timestamp(eventtime) >= :since
  AND from_iso8601_timestamp(eventtime) < :until
  AND eventname IN (
    'CreateNetworkAclEntry', 'ReplaceNetworkAclEntry', 'DeleteNetworkAclEntry',
    'CreateNetworkAcl', 'DeleteNetworkAcl', 'ReplaceNetworkAclAssociation'
  )
ORDER BY event_time ASC, event_id ASC
