"""Carol long tasks: models, the waiting policy, the tracker's bookkeeping, and the task calls."""
