"""Tracking: what leads and visitors do on the site and with mail, told apart from machines."""
