"""exhunt.hunt."""
