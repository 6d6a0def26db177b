/* Security-group API calls in the window, failed ones included. The attribute calls count only when they */
/* carry a groupSet (they also change other attributes). */
SELECT
  eventid AS event_id,
  eventtime AS event_time,
  eventname AS event_name,
  COALESCE(
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
  requestparameters AS request_parameters,
  responseelements AS response_elements
FROM cloudtrail
WHERE
  eventsource = 'ec2.amazonaws.com'
  AND CAST(eventtime AS TIMESTAMPTZ) >= $since
  AND CAST(eventtime AS TIMESTAMPTZ) < $until
  AND (
    eventname IN (
      'AuthorizeSecurityGroupIngress',
      'AuthorizeSecurityGroupEgress',
      'RevokeSecurityGroupIngress',
      'RevokeSecurityGroupEgress',
      'ModifySecurityGroupRules',
      'UpdateSecurityGroupRuleDescriptionsIngress',
      'UpdateSecurityGroupRuleDescriptionsEgress',
      'CreateSecurityGroup',
      'DeleteSecurityGroup'
    )
    OR (
      eventname IN ('ModifyNetworkInterfaceAttribute', 'ModifyInstanceAttribute')
      AND NOT (
        requestparameters -> '$.groupSet'
      ) IS NULL
    )
  )
ORDER BY
  event_time ASC,
  event_id ASC
