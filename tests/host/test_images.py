"""Image references from docker artifacts: Flynn's registry URIs, docker://, local images."""

from datetime import UTC, datetime

import pytest

from domain.objects import Artifact
from host.artifacts import ArtifactError
from host.images import ImageSource, image_source

DIGEST = "sha256:" + "ab" * 32


def source(uri: str, type_: str = "docker") -> ImageSource:
    return image_source(Artifact("a1", type_, uri, datetime.now(UTC)))


def test_flynns_registry_uris_name_a_repository_at_a_digest():
    """https://REGISTRY?name=REPO&id=DIGEST pulls REPO@DIGEST from that registry (a bare hex
    id is a sha256 digest); http:// is a registry without TLS; no id is the latest."""
    assert source(f"https://registry.example.com:5000?name=flynn/slugrunner&id={DIGEST}") == (
        ImageSource(f"registry.example.com:5000/flynn/slugrunner@{DIGEST}")
    )
    assert source(f"https://r.example.com/?name=app&id={'ab' * 32}").reference == (
        f"r.example.com/app@{DIGEST}"
    )
    assert source("http://127.0.0.1:5000?name=app") == ImageSource(
        "127.0.0.1:5000/app", tls_verify=False
    )


def test_docker_references_are_read_as_docker_reads_short_names():
    """docker://busybox is docker.io/library/busybox:latest; a registry host is kept."""
    assert source("docker://busybox").reference == "docker.io/library/busybox:latest"
    assert source("docker://user/app:2").reference == "docker.io/user/app:2"
    assert source("docker://localhost:5000/app").reference == "localhost:5000/app:latest"
    assert source(f"docker://quay.io/a/b@{DIGEST}").reference == f"quay.io/a/b@{DIGEST}"


def test_local_images_are_never_pulled():
    """containers-storage: names an image of this machine; oci-archive: a path, checked
    against the artifact root when the job starts."""
    assert source("containers-storage:localhost/app:1") == ImageSource(
        "localhost/app:1", pull=False
    )
    assert source("oci-archive:/srv/artifacts/../artifacts/app.tar") == ImageSource(
        "", pull=False, archive="/srv/artifacts/app.tar"
    )


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("docker://--privileged", "does not name an image reference"),
        ("docker://app name", "does not name an image reference"),
        ("containers-storage:-v=/:/host", "does not name an image reference"),
        ("https://r.example.com?name=App", "repository name that is not one"),
        ("https://r.example.com?name=a&id=15d72b7f573b", "not a sha256 digest"),
        ("https://r.example.com?name=a&name=b", "needs one name"),
        ("https://user:pw@r.example.com?name=a", "credentials"),
        ("https://r_x?name=a", "does not name a registry host"),
        ("https://r.example.com/v2/?name=a", "has a path"),
        ("oci-archive:relative.tar", "does not name an absolute path"),
        ("ftp://r.example.com/app", "is none of"),
    ],
)
def test_anything_else_is_refused_with_the_reason(uri: str, reason: str):
    """A reference that is not one (an option, a blank), or a URI of another shape."""
    with pytest.raises(ArtifactError, match=reason):
        source(uri)


def test_file_artifacts_are_not_images():
    """The podman host runs docker artifacts only: the local host runs the others."""
    with pytest.raises(ArtifactError, match="artifacts of type docker, not 'file'"):
        source("file:///srv/app", "file")
