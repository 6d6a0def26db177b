"""The evidence archive: a verifiable, tamper-evident bundle per run, locally and in S3 with Object Lock.

:func:`auditor.archive.archiver.archive_run` writes one; :func:`auditor.archive.verify.verify_archive` checks
an archive.
"""
