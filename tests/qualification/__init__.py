"""Qualification end to end (issue 6 §5): scoring on the stream, stages, hand-off to sales and
the CRM webhooks, in-process under moto and on the embedded runtime."""
