"""Persistence: typed models, repositories that never commit, the unit of work, migrations."""
