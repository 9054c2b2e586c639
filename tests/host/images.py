"""Container images for the tests, built on this machine (no registry is reachable here): a
root filesystem of Debian's static busybox, `podman import`-ed, or saved as an OCI archive."""

import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from host.podman_cli import ENV, available, global_options

#: The test image's reference in podman's storage.
IMAGE = "localhost/evenflow-test-busybox:1"
BUSYBOX = Path("/bin/busybox")


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    """podman, configured as the host configures it."""
    command = [shutil.which("podman") or "podman", *global_options("runc"), *args]
    return subprocess.run(command, capture_output=True, env=ENV, check=check)


def need_podman() -> None:
    """Skip without podman, unless the suite must run everything (REQUIRE_PODMAN=1, as
    `make test` sets after installing it)."""
    if available() and BUSYBOX.is_file():
        return
    if os.environ.get("REQUIRE_PODMAN") == "1":
        pytest.fail(
            "podman and busybox-static are required (REQUIRE_PODMAN=1): make test installs them"
        )
    pytest.skip("needs podman and busybox-static (make test installs them)")


def rootfs() -> bytes:
    """A tarball of a root filesystem: busybox and a link for each of its applets."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, mode in (("bin", 0o755), ("tmp", 0o1777), ("etc", 0o755), ("www", 0o755)):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
        tar.add(BUSYBOX, "bin/busybox")
        applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, check=True)
        for applet in applets.stdout.decode().split():
            if applet != "busybox":
                info = tarfile.TarInfo(f"bin/{applet}")
                info.type, info.linkname = tarfile.SYMTYPE, "busybox"
                tar.addfile(info)
        page = b"hello from the image\n"
        info = tarfile.TarInfo("www/index.html")
        info.size, info.mode = len(page), 0o644
        tar.addfile(info, io.BytesIO(page))
    return buffer.getvalue()


def busybox_image() -> str:
    """The test image, imported into podman's storage unless it is there already."""
    need_podman()
    if podman("image", "exists", IMAGE, check=False).returncode != 0:
        command = [shutil.which("podman") or "podman", *global_options("runc"), "import",
                   "--change=ENV=PATH=/bin", "--change=CMD=[\"sh\"]", "-", IMAGE]  # fmt: skip
        subprocess.run(command, input=rootfs(), capture_output=True, env=ENV, check=True)
    return IMAGE


def oci_archive(path: Path) -> Path:
    """The test image saved as an OCI archive at `path`, readable by anyone."""
    podman("save", "--format=oci-archive", f"--output={path}", busybox_image())
    os.chmod(path, 0o644)
    return path


def containers(host_id: str) -> dict[str, str]:
    """Job id -> state (running, exited, ...) of every container labelled with `host_id`."""
    out = podman("ps", "--all", "--format=json", f"--filter=label=evenflow.host={host_id}").stdout
    return {c["Names"][0]: c["State"] for c in json.loads(out or b"[]")}


def published_port(job_id: str) -> int:
    """The host port of the job's container (its first)."""
    labels = json.loads(podman("inspect", "--type=container", job_id).stdout)[0]["Config"]
    return int(labels["Labels"]["evenflow.ports"].split(",")[0])


def remove_containers(host_id: str) -> None:
    for name in containers(host_id):
        podman("rm", "--force", "--time=0", name, check=False)
