"""What a service process runs besides HTTP: its settings, the worker supervisor, the log and
its fold, the background drivers (deployer, SQL projector, scheduling, snapshots), the client
of resource providers, the backup archive and the service log's format."""
