"""The analyst console: a web application over the warehouse and the registry (an adapter).

Its own process (`fraudops console`), so the scoring path stays lean: the review queue,
cases and labels, monitoring, models with promotion and rollback, the daily report.
"""
