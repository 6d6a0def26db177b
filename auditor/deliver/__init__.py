"""Delivery: the report by email (SMTP or Amazon SES), and the scheduled suites that send it."""
