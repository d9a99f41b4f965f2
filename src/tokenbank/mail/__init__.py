"""Email: messages in the person's language, sent with aiosmtplib to the configured server.

In development ``tokenbank dev`` runs a local SMTP sink (aiosmtpd) that keeps every
message in a Maildir, shown at ``/dev/mail``; tests run a real SMTP server too.
"""
