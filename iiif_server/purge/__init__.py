"""Purge: forget an identifier, a type or everything in every cache, in every front process."""
