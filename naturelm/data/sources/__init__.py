"""One loader per data source; each returns records plus a report of rows read and rejected per reason."""
