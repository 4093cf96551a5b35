"""Data access: PynamoDB models and the repositories the domain talks to through its ports."""
