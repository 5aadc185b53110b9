"""The sandbox's route groups, one module per Carol area plus the admin API."""
