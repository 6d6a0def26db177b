"""The evidence archive: a verifiable, tamper-evident bundle per run, locally and in S3 with Object Lock."""
