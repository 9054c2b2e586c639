"""The scheduler: reconciles formations and one-off jobs into jobs on a host, and reports them."""

from scheduler.backoff import Backoff
from scheduler.reconciler import Scheduler

__all__ = ["Backoff", "Scheduler"]
