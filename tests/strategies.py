"""Hypothesis strategies for Flynn's objects and Evenflow's events."""

from datetime import UTC, datetime

from hypothesis import strategies as st

from domain import events as ev
from domain.keys import Key, KeyCreated, KeyRevoked, Scope
from domain.objects import (
    App,
    Artifact,
    Deployment,
    DomainMigration,
    Job,
    Provider,
    Release,
    Resource,
    Route,
)

uuids = st.uuids().map(str)
names = st.from_regex(r"[a-z0-9]{1,8}(-[a-z0-9]{1,8}){0,2}", fullmatch=True)
# Postgres keeps microseconds, and so do our times.
times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
text = st.text(min_size=0, max_size=20)
string_maps = st.dictionaries(st.text(min_size=1, max_size=10), text, max_size=4)
counts = st.dictionaries(
    st.sampled_from(["web", "worker", "clock"]), st.integers(0, 20), max_size=3
)

apps = st.builds(
    App,
    id=uuids,
    name=names,
    created_at=times,
    updated_at=times,
    meta=string_maps,
    strategy=st.sampled_from(["all-at-once", "one-by-one"]),
    deploy_timeout=st.integers(1, 600),
    release_id=st.none() | uuids,
    protected=st.booleans(),
)
artifacts = st.builds(
    Artifact,
    id=uuids,
    type=st.sampled_from(["docker", "file"]),
    uri=st.just("https://x/y"),
    created_at=times,
    meta=string_maps,
)
process_types = st.fixed_dictionaries(
    {"cmd": st.lists(text, max_size=3)},
    optional={"env": string_maps, "ports": st.just([{"port": 8080, "proto": "tcp"}])},
)
releases = st.builds(
    Release,
    id=uuids,
    created_at=times,
    artifact_id=st.none() | uuids,
    artifact_ids=st.lists(uuids, max_size=2).map(tuple),
    env=string_maps,
    meta=string_maps,
    processes=st.dictionaries(st.sampled_from(["web", "worker"]), process_types, max_size=2),
    app_id=st.none() | uuids,
)
jobs = st.builds(
    Job,
    id=uuids.map(lambda u: f"host-{u}"),
    app_id=uuids,
    release_id=uuids,
    state=st.sampled_from(["pending", "starting", "up", "stopping", "down", "crashed"]),
    created_at=times,
    updated_at=times,
    type=st.sampled_from(["", "web"]),
    meta=string_maps,
    exit_status=st.none() | st.integers(0, 255),
    host_error=text,
    cmd=st.lists(text, max_size=2).map(tuple),
    entrypoint=st.lists(text, max_size=2).map(tuple),
    env=string_maps,
)
providers = st.builds(
    Provider, id=uuids, name=names, url=st.just("http://p/"), created_at=times, updated_at=times
)
resources = st.builds(
    Resource,
    id=uuids,
    provider_id=uuids,
    created_at=times,
    external_id=text,
    env=string_maps,
    apps=st.lists(uuids, max_size=2).map(tuple),
)
routes = st.builds(
    Route,
    type=st.sampled_from(["http", "tcp"]),
    id=uuids,
    parent_ref=uuids.map(lambda u: f"controller/apps/{u}"),
    service=names,
    created_at=times,
    updated_at=times,
    domain=names,
    sticky=st.booleans(),
    path=st.sampled_from(["", "/", "/api/"]),
    port=st.integers(0, 65535),
    leader=st.booleans(),
)
deployments = st.builds(
    Deployment,
    id=uuids,
    app_id=uuids,
    new_release_id=uuids,
    strategy=st.sampled_from(["all-at-once", "one-by-one"]),
    status=st.sampled_from(["pending", "complete"]),
    processes=counts,
    deploy_timeout=st.integers(1, 600),
    created_at=times,
    old_release_id=st.none() | uuids,
    finished_at=st.none() | times,
)
migrations = st.builds(
    DomainMigration,
    id=uuids,
    old_domain=names,
    domain=names,
    created_at=times,
    finished_at=st.none() | times,
)

keys = st.builds(
    Key,
    name=names,
    scope=st.sampled_from(list(Scope)),
    secret_sha256=st.from_regex(r"[0-9a-f]{64}", fullmatch=True),
    created_at=times,
    apps=st.none() | st.lists(uuids, max_size=2).map(tuple),
    expires_at=st.none() | times,
    revoked_at=st.none() | times,
)

events = st.one_of(
    st.builds(ev.AppCreated, apps),
    st.builds(ev.AppUpdated, apps),
    st.builds(ev.AppReleaseSet, uuids, releases, st.none() | releases),
    st.builds(
        ev.AppDeleted,
        uuids,
        st.lists(routes, max_size=2).map(tuple),
        st.lists(resources, max_size=2).map(tuple),
        st.lists(releases, max_size=2).map(tuple),
    ),
    st.builds(ev.ReleaseCreated, releases),
    st.builds(
        ev.ReleaseDeleted,
        uuids,
        uuids,
        st.lists(uuids, max_size=2).map(tuple),
        st.lists(text, max_size=2).map(tuple),
    ),
    st.builds(ev.ArtifactCreated, artifacts),
    st.builds(ev.FormationScaled, uuids, uuids, st.none() | counts, st.none() | counts),
    st.builds(ev.DeploymentCreated, deployments),
    st.builds(
        ev.DeploymentStatusChanged,
        uuids,
        uuids,
        uuids,
        st.sampled_from(["running", "complete", "failed"]),
        text,
        text,
        text,
    ),
    st.builds(ev.JobStateChanged, jobs),
    st.builds(ev.ProviderCreated, providers),
    st.builds(ev.ResourceCreated, resources, st.none() | uuids),
    st.builds(ev.ResourceDeleted, resources, st.none() | uuids),
    st.builds(ev.RouteCreated, routes),
    st.builds(ev.RouteUpdated, routes),
    st.builds(ev.RouteDeleted, routes),
    st.builds(ev.DomainMigrated, migrations, text),
    st.builds(KeyCreated, keys),
    st.builds(KeyRevoked, names, times),
)
