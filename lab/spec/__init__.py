"""Spec files in PostgreSQL's isolationtester format: parse, run, print."""
