"""Credentials: password and PIN hashing."""
