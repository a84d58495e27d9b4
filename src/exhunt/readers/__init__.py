"""exhunt.readers."""
