"""Qualification: how hot a lead is (score), how well it fits (grade), who in sales gets it, and
what the CRM says happened next.

Everything here is pure: no AWS, no clock of its own. The caller passes "now", the lead's earlier
awards and the counters it keeps, and stores what comes back.
"""
