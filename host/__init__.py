"""Hosts: where jobs run. `interface` is what a scheduler needs of one; `local` runs jobs as
processes of this machine."""

from host.interface import Host, HostEvent, JobSpec

__all__ = ["Host", "HostEvent", "JobSpec"]
