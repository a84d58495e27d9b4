"""exhunt.checks."""
