"""exhunt.lab."""
