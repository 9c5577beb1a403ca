"""Alerts: events worth telling people about, kept in a durable outbox and delivered by
e-mail and webhook with retries, deduplication and digests.

Its modules import nothing of storage at run time, so that storage may build alert events
in the same database transaction that stores what caused them.
"""
