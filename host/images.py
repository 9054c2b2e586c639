"""Container images from `docker` artifacts: which image a URI names, and where it comes from.

Accepted URIs (anything else fails the job with a host error that says so):

* Flynn's `https://REGISTRY[:PORT]?name=REPO&id=DIGEST` (`http://` for a registry without
  TLS): `REGISTRY[:PORT]/REPO@DIGEST`, pulled from that registry; without `id`, the
  repository's `latest`.
* `docker://REF`: a reference as `docker pull` takes it (`busybox` is
  `docker.io/library/busybox:latest`).
* `containers-storage:REF`: an image already in this machine's podman storage; never pulled.
* `oci-archive:PATH`: an OCI archive under ARTIFACT_ROOT (as `file` artifacts), loaded into
  the storage first; the file is opened by the host one name at a time from the root, never
  through a link, and must be readable by the job's user (host/archives.py).

Every reference is checked against the grammar of image references (no option, no space, no
path can hide in one) before it reaches `podman` as one argument.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import attrs

from domain.objects import Artifact
from host.artifacts import ArtifactError, local_path

# The grammar of github.com/distribution/reference, as `podman pull` reads it.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_DOMAIN = rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:]+\])(?::[0-9]{{1,5}})?"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
REPOSITORY = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
DOMAIN = re.compile(_DOMAIN)
DIGEST = re.compile(_DIGEST)
REFERENCE = re.compile(
    rf"(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?"
)
#: The longest reference taken (Docker's limit on a repository name is 255).
MAX_REFERENCE = 512


@attrs.frozen
class ImageSource:
    """Where a job's image comes from: a `reference` podman can create a container of (once
    the image is there), from a registry (`pull`), from this machine's storage, or from an
    OCI archive under the artifact root (`archive`, loaded first)."""

    reference: str
    pull: bool = True
    tls_verify: bool = True
    archive: str | None = None  # the archive's path, normalized


def image_source(artifact: Artifact) -> ImageSource:
    """The image a `docker` artifact names; ArtifactError when it names none we take."""
    if artifact.type != "docker":
        raise ArtifactError(f"the podman host runs artifacts of type docker, not {artifact.type!r}")
    uri = artifact.uri
    if uri.startswith("docker://"):
        return ImageSource(normalized(uri.removeprefix("docker://"), uri))
    if uri.startswith("containers-storage:"):
        return ImageSource(checked(uri.removeprefix("containers-storage:"), uri), pull=False)
    if uri.startswith("oci-archive:"):
        path = local_path(attrs.evolve(artifact, type="file", uri=uri.removeprefix("oci-archive:")))
        return ImageSource("", pull=False, archive=path)
    parts = urlsplit(uri)
    if parts.scheme in ("https", "http") and parts.netloc:
        return _registry(uri)
    raise ArtifactError(
        f"the image {uri} is none of https://REGISTRY?name=REPO&id=DIGEST, docker://REF, "
        "containers-storage:REF, oci-archive:PATH"
    )


def _registry(uri: str) -> ImageSource:
    """Flynn's form: the registry's URL, the repository and the digest as parameters."""
    parts = urlsplit(uri)
    query = parse_qs(parts.query)
    names, ids = query.get("name", []), query.get("id", [])
    if parts.path not in ("", "/") or "@" in parts.netloc or parts.fragment:
        raise ArtifactError(f"the image {uri} has a path, credentials or a fragment")
    if not DOMAIN.fullmatch(parts.netloc):
        raise ArtifactError(f"the image {uri} does not name a registry host")
    if len(names) != 1 or len(ids) > 1:
        raise ArtifactError(f"the image {uri} needs one name (and at most one id)")
    name = names[0]
    if not REPOSITORY.fullmatch(name):
        raise ArtifactError(f"the image {uri} has a repository name that is not one: {name!r}")
    reference = f"{parts.netloc}/{name}"
    if ids:
        digest = ids[0] if ":" in ids[0] else f"sha256:{ids[0]}"
        if not DIGEST.fullmatch(digest) or not digest.startswith("sha256:"):
            raise ArtifactError(f"the image {uri} has an id that is not a sha256 digest")
        reference += f"@{digest}"
    return ImageSource(checked(reference, uri), tls_verify=parts.scheme == "https")


def checked(reference: str, uri: str) -> str:
    """`reference` if it is an image reference (a plain image id included), else an error."""
    if len(reference) <= MAX_REFERENCE and REFERENCE.fullmatch(reference):
        return reference
    raise ArtifactError(f"the image {uri} does not name an image reference: {reference[:100]!r}")


def normalized(reference: str, uri: str) -> str:
    """Docker's reading of a short name (reference.ParseNormalizedNamed): `busybox` is
    docker.io/library/busybox:latest."""
    match = REFERENCE.fullmatch(checked(reference, uri))
    assert match is not None
    first, slash, rest = reference.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        domain, remainder = first, rest
    else:
        domain, remainder = "docker.io", reference
    if domain == "docker.io" and "/" not in remainder:
        remainder = f"library/{remainder}"
    if match["tag"] is None and match["digest"] is None:
        remainder += ":latest"
    return f"{domain}/{remainder}"
