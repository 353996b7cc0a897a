"""The scheduling services, with the fixes the original suite listed as future work.

Scenarios call these; they never re-implement them. Every function takes the caller's
SQLAlchemy Session and leaves committing to the caller, so a scenario can put a step
boundary (and a race) anywhere between them.
"""
