"""Settings from the environment, as Flynn's controller reads them, plus Evenflow's own."""

from __future__ import annotations

import ipaddress
import math
import os
import re
from pathlib import Path

import attrs

from host.inputs import valid_host_id
from host.mixed import JOB_HOSTS
from host.podman import PULL_POLICIES
from host.podman_cli import available
from host.uids import DEFAULT_RANGE

#: Reported by /.well-known/status. Flynn's CLI picks formation-based scaling (the API
#: Evenflow speaks) for versions older than v20170309.0.
FLYNN_VERSION = "v20151214.0"
EVENFLOW_VERSION = "0.1.0"


def _int(env: dict[str, str], name: str, default: int) -> int:
    value = env.get(name)
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise SystemExit(f"{name} must be an integer, got {value!r}") from None


def _seconds(env: dict[str, str], name: str, default: float) -> float:
    value = env.get(name)
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        raise SystemExit(f"{name} must be a number of seconds, got {value!r}") from None


def _positive(env: dict[str, str], name: str, default: float) -> float:
    # 0 would turn a timeout off: a slow client could then hold a connection for ever.
    value = _seconds(env, name, default)
    if not (value > 0 and math.isfinite(value)):
        raise SystemExit(f"{name} must be a positive number of seconds, got {value!r}")
    return value


#: Where /metrics is served unless METRICS_PORT says otherwise (on METRICS_HOST).
METRICS_PORT = 9464


def _port(env: dict[str, str], name: str, default: int) -> int:
    value = _int(env, name, default)
    if not 0 <= value <= 65535:
        raise SystemExit(f"{name} must be a port (0 for none), got {value}")
    return value


def _count(env: dict[str, str], name: str, default: int) -> int:
    value = _int(env, name, default)
    if value < 0:
        raise SystemExit(f"{name} must be 0 or more, got {value}")
    return value


def _origins(env: dict[str, str]) -> tuple[str, ...]:
    """CORS_ORIGINS: `*` and/or origins (`scheme://host[:port]`), as browsers send them."""
    value = env.get("CORS_ORIGINS")
    if value is None:
        return ("*",)
    origins = tuple(o.strip().rstrip("/").lower() for o in value.split(",") if o.strip())
    for origin in origins:
        # "null" is what sandboxed frames and file: pages send: anyone can be "null".
        if origin != "*" and not re.fullmatch(r"[a-z][a-z0-9+.-]*://[^/?#\s]+", origin):
            raise SystemExit(f"CORS_ORIGINS: {origin!r} is not * nor an origin like https://host")
    return origins


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(env: dict[str, str], name: str) -> tuple[Network, ...]:
    """Comma-separated CIDRs (or single addresses)."""
    networks = []
    for part in (env.get(name) or "").split(","):
        if part.strip():
            try:
                networks.append(ipaddress.ip_network(part.strip(), strict=False))
            except ValueError:
                raise SystemExit(f"{name}: {part.strip()!r} is not an address or a CIDR") from None
    return tuple(networks)


def _backoff(env: dict[str, str]) -> tuple[float, float, float]:
    value = env.get("RESTART_BACKOFF")
    if not value:
        return (0.0, 10.0, 30.0)
    try:
        first, second, third = (float(part) for part in value.split(","))
    except ValueError:
        raise SystemExit(
            f"RESTART_BACKOFF must be three seconds, e.g. 0,10,30; got {value!r}"
        ) from None
    return (first, second, third)


def _tls_pair(env: dict[str, str]) -> tuple[str | None, str | None]:
    # One without the other would silently serve plain HTTP: refuse to start instead.
    cert, key = env.get("TLS_CERT") or None, env.get("TLS_KEY") or None
    if (cert is None) != (key is None):
        raise SystemExit("TLS_CERT and TLS_KEY must be set together (or neither)")
    return cert, key


#: "local": the built-in scheduler runs jobs as processes of this machine; "off": no scheduler
#: in this process (API clients report jobs with PUT /apps/:app/jobs/:job).
SCHEDULERS = ("local", "off")


def _scheduler(env: dict[str, str]) -> str:
    value = env.get("SCHEDULER") or "local"
    if value not in SCHEDULERS:
        raise SystemExit(f"SCHEDULER must be one of {', '.join(SCHEDULERS)}, got {value!r}")
    return value


# -- the local host: who jobs run as, where artifacts come from, its id ------------------


def _uid_range(env: dict[str, str]) -> tuple[int, int]:
    value = env.get("JOB_UID_RANGE")
    if not value:
        return DEFAULT_RANGE
    first, _, last = value.partition("-")
    if not (first.isdigit() and last.isdigit() and 0 < int(first) <= int(last) < 2**32 - 1):
        raise SystemExit(f"JOB_UID_RANGE must be FIRST-LAST, uids above 0; got {value!r}")
    return int(first), int(last)


def _host_id(env: dict[str, str]) -> str:
    value = (env.get("HOST_ID") or "host").replace("-", "")  # Flynn: host/host.go
    if not valid_host_id(value):
        raise SystemExit(f"HOST_ID must be letters, digits, '.' or '_' (at most 64); got {value!r}")
    return value


def _no_job_user(env: dict[str, str]) -> None:
    if "JOB_USER" in env:
        raise SystemExit(
            "JOB_USER is no longer read: run as root, jobs run as a uid of their app's own, "
            "from JOB_UID_RANGE; unset JOB_USER"
        )


# -- container images: which host runs them, where they come from ----------------------


def _job_host(env: dict[str, str]) -> str:
    # Not HOST: that one is the address the API listens on.
    value = env.get("JOB_HOST") or "auto"
    if value not in JOB_HOSTS:
        raise SystemExit(f"JOB_HOST must be one of {', '.join(JOB_HOSTS)}, got {value!r}")
    if value == "podman" and not available():
        raise SystemExit("JOB_HOST=podman, but podman is not installed (apt-get install podman)")
    return value


def _choice(env: dict[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    value = env.get(name) or default
    if value not in choices:
        raise SystemExit(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


@attrs.frozen
class Settings:
    database_url: str | None = None  # None: the embedded local PostgreSQL
    auth_keys: tuple[str, ...] = ()
    port: int = 8080
    host: str = "0.0.0.0"
    default_route_domain: str | None = None
    ca_cert: str | None = None
    data_dir: Path = Path(".evenflow")
    max_body_size: int = 10 * 1024 * 1024
    max_streams: int = 10_000  # streaming responses open at once; one more is a 503
    provider_timeout: float = 30.0
    # -- the HTTP edge (controller/connections.py, controller/cors.py) --
    header_timeout: float = 10.0  # seconds to send a request's head (and idle keep-alive)
    body_timeout: float = 60.0  # seconds to send a request's body once its head is in
    max_connections: int = 0  # open connections per process; 0: from RLIMIT_NOFILE
    max_connections_per_client: int = 256  # from one IPv4 address or IPv6 /64; 0: no cap
    cors_origins: tuple[str, ...] = ("*",)  # granted credentials if listed; "*": others, without
    # Proxies whose X-Forwarded-For names the client in the events' actors; none by default.
    trusted_proxies: tuple[Network, ...] = ()
    tls_cert: str | None = None
    tls_key: str | None = None
    # This controller's host id: one-off jobs are "<host_id>-<uuid>" (no "-" in it).
    host_id: str = "host"
    # "off" here, "local" from the environment: a service started by `make run` schedules,
    # while settings built in code (tests playing the scheduler) do not unless they ask.
    scheduler: str = "off"
    artifact_root: Path | None = None  # file artifacts come from here; None: data_dir/artifacts
    job_uid_range: tuple[int, int] = DEFAULT_RANGE  # run as root, each app's jobs get a uid here
    job_stop_grace: float = 10.0  # seconds from SIGTERM to SIGKILL when a job is stopped
    job_up_timeout: float = 30.0  # seconds a job with ports has to accept connections
    restart_backoff: tuple[float, float, float] = (0.0, 10.0, 30.0)  # below 5, 15, more restarts
    restart_reset: float = 300.0  # seconds up after which a job's restart count starts over
    host_poll_interval: float = 0.1  # how often the local host looks at its jobs
    # Container images (host/mixed.py): "local" runs processes only, "podman" image jobs in
    # containers too, "auto" podman where it is installed; "local" unless the env says.
    job_host: str = "local"
    image_pull: str = "missing"  # pull policy: missing, always, never
    podman_runtime: str = "runc"  # the OCI runtime podman runs containers with
    leader_retry: float = 2.0  # how often a standby controller tries to become the scheduler
    # Seconds a request waits for this process's fold to reach a position (then a 503).
    consistency_timeout: float = 5.0
    # /metrics on a listener of its own (0: none; from the environment, 9464).
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        _no_job_user(env)
        keys = tuple(k.strip() for k in env.get("AUTH_KEY", "").split(",") if k.strip())
        return cls(
            database_url=env.get("DATABASE_URL") or None,
            auth_keys=keys,
            port=int(env["PORT"]) if env.get("PORT", "").isdigit() else 8080,
            host=env.get("HOST") or "0.0.0.0",
            default_route_domain=env.get("DEFAULT_ROUTE_DOMAIN") or None,
            ca_cert=env.get("CA_CERT") or None,
            data_dir=Path(env.get("EVENFLOW_DATA_DIR") or ".evenflow"),
            max_body_size=_int(env, "MAX_BODY_SIZE", 10 * 1024 * 1024),
            max_streams=_int(env, "MAX_STREAMS", 10_000),
            header_timeout=_positive(env, "HEADER_TIMEOUT", 10.0),
            body_timeout=_positive(env, "BODY_TIMEOUT", 60.0),
            max_connections=_count(env, "MAX_CONNECTIONS", 0),
            max_connections_per_client=_count(env, "MAX_CONNECTIONS_PER_CLIENT", 256),
            cors_origins=_origins(env),
            trusted_proxies=_networks(env, "TRUSTED_PROXIES"),
            tls_cert=_tls_pair(env)[0],
            tls_key=_tls_pair(env)[1],
            host_id=_host_id(env),
            scheduler=_scheduler(env),
            artifact_root=Path(env["ARTIFACT_ROOT"]) if env.get("ARTIFACT_ROOT") else None,
            job_uid_range=_uid_range(env),
            job_stop_grace=_seconds(env, "JOB_STOP_GRACE", 10.0),
            job_up_timeout=_seconds(env, "JOB_UP_TIMEOUT", 30.0),
            restart_backoff=_backoff(env),
            job_host=_job_host(env),
            image_pull=_choice(env, "IMAGE_PULL", PULL_POLICIES, "missing"),
            podman_runtime=_choice(env, "PODMAN_RUNTIME", ("runc", "crun"), "runc"),
            consistency_timeout=_seconds(env, "CONSISTENCY_TIMEOUT", 5.0),
            metrics_host=env.get("METRICS_HOST") or "127.0.0.1",
            metrics_port=_port(env, "METRICS_PORT", METRICS_PORT),
        )

    @property
    def artifacts_dir(self) -> Path:
        """Where the local host takes `file` artifacts from (ARTIFACT_ROOT)."""
        return self.artifact_root or self.data_dir / "artifacts"
