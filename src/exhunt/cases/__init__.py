"""exhunt.cases."""
