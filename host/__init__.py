"""Hosts: where jobs run. `interface` is what a scheduler needs of one; `local` runs jobs as
processes of this machine, `podman` image jobs as containers, `mixed` both behind one id."""

from host.interface import Host, HostEvent, JobSpec

__all__ = ["Host", "HostEvent", "JobSpec"]
