"""The replay tool: backups restored, state rebuilt and inspected from the log alone."""
