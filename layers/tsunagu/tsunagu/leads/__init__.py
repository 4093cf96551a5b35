"""Leads: one person, one record, whatever the channel they came from."""
