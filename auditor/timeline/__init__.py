"""The security-group timeline: rule versions and interface group sets over time, from the inventory snapshot and
the CloudTrail security-group events (:mod:`auditor.timeline.build`), built once per run and loaded into the run's
workspace for the checks' second phase (:mod:`auditor.timeline.run`). docs/timeline.md explains it."""
