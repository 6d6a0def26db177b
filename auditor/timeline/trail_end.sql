-- The last CloudTrail event read up to the inventory's capture: when it comes well before the capture, the
-- timeline cannot know what changed in between.
SELECT max(from_iso8601_timestamp(eventtime)) AS last_event
FROM cloudtrail
WHERE from_iso8601_timestamp(eventtime) >= :since
  AND from_iso8601_timestamp(eventtime) < :until
