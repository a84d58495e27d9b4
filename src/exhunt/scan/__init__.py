"""exhunt.scan."""
