"""The web dashboard: its pages, its sessions, and the endpoints it reads besides Flynn's API."""
