"""Storage: the schema, its migrations, and the only modules that run SQL."""
