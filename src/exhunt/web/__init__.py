"""exhunt.web."""
