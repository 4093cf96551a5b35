"""What HTTP handlers share: reading API Gateway HTTP API (payload 2.0) events, and the one
mapping from domain errors to responses."""
