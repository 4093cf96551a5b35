"""Journeys end to end: each shipped state machine run by the embedded runtime (moto, the real
activity handlers, a compressed clock), asserted on execution histories, the mails in the mail
viewer's store and the rows written."""
