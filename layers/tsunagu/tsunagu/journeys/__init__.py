"""Journeys: the activities Step Functions journeys call, and the rules behind them."""
