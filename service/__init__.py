"""What a service process runs besides HTTP: its settings, the worker supervisor, the log
and its fold, the background drivers (deployer, SQL projector, scheduling, snapshots) and
the client of resource providers."""
