"""Outgoing mail: RFC 5322 messages and the SMTP / outbox transports (``mailer``).

Its own package, below both users: account mail (``community/accounts.py``: confirmation and
password-reset links) and email digests (``digest/send.py``) build and send messages through it.
It needs only :mod:`paperfeed.config`, so neither feature has to import the other to send mail.
"""
