"""The Athena engine: check SQL on Athena (Trino) over flow logs and CloudTrail in S3."""
