"""Settings from the environment, as Flynn's controller reads them, plus Evenflow's own."""

from __future__ import annotations

import os
from pathlib import Path

import attrs

#: Reported by /.well-known/status. Flynn's CLI picks formation-based scaling (the API
#: Evenflow speaks) for versions older than v20170309.0.
FLYNN_VERSION = "v20151214.0"
EVENFLOW_VERSION = "0.1.0"


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise SystemExit(f"{name} must be an integer, got {value!r}") from None


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
    provider_timeout: float = 30.0
    tls_cert: str | None = None
    tls_key: str | None = None
    # This controller's host id: one-off jobs are "<host_id>-<uuid>" (no "-" in it).
    host_id: str = "host"

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
            max_body_size=_int("MAX_BODY_SIZE", 10 * 1024 * 1024),
            tls_cert=env.get("TLS_CERT") or None,
            tls_key=env.get("TLS_KEY") or None,
            host_id=(env.get("HOST_ID") or "host").replace("-", ""),
        )
