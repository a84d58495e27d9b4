"""exhunt.store."""
