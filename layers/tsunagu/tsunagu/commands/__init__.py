"""What people do with Tsunagu, one use case per operation, shared by the CLI and (next) the
admin API and the console: each checks the caller's role against the one permission table
(``access``), does the work through the domain and its ports, and records every change, and
every refusal, in the audit log (``audit``). Neither front end holds a rule of its own."""
