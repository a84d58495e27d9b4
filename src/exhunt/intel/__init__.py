"""exhunt.intel."""
