"""Settings from the environment, as Flynn's controller reads them, plus Evenflow's own."""

from __future__ import annotations

import os
from pathlib import Path

import attrs

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
    tls_cert: str | None = None
    tls_key: str | None = None
    # This controller's host id: one-off jobs are "<host_id>-<uuid>" (no "-" in it).
    host_id: str = "host"
    # "off" here, "local" from the environment: a service started by `make run` schedules,
    # while settings built in code (tests playing the scheduler) do not unless they ask.
    scheduler: str = "off"
    job_user: str = "nobody"  # jobs run as this user when the service runs as root
    job_stop_grace: float = 10.0  # seconds from SIGTERM to SIGKILL when a job is stopped
    job_up_timeout: float = 30.0  # seconds a job with ports has to accept connections
    restart_backoff: tuple[float, float, float] = (0.0, 10.0, 30.0)  # below 5, 15, more restarts
    restart_reset: float = 300.0  # seconds up after which a job's restart count starts over
    host_poll_interval: float = 0.1  # how often the local host looks at its jobs
    leader_retry: float = 2.0  # how often a standby controller tries to become the scheduler
    # Seconds a request waits for this process's fold to reach a position (then a 503).
    consistency_timeout: float = 5.0

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
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
            tls_cert=_tls_pair(env)[0],
            tls_key=_tls_pair(env)[1],
            host_id=(env.get("HOST_ID") or "host").replace("-", ""),
            scheduler=_scheduler(env),
            job_user=env.get("JOB_USER", "nobody"),
            job_stop_grace=_seconds(env, "JOB_STOP_GRACE", 10.0),
            job_up_timeout=_seconds(env, "JOB_UP_TIMEOUT", 30.0),
            restart_backoff=_backoff(env),
            consistency_timeout=_seconds(env, "CONSISTENCY_TIMEOUT", 5.0),
        )
