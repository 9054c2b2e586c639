"""Flynn's vocabulary: its objects, the events of the log, ids, times and the clock."""
