"""What guards the door and counts the cost: auth, limits, budgets (gateway), usage, audit, metrics, alerts."""
