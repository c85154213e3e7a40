"""Persistence: the database models, the store, the append-only trace and its audit chain."""
