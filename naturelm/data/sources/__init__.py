"""data sources."""
