"""An app's routes over HTTP (Flynn: controller/routes.go); TLS pairs are checked here."""

from __future__ import annotations

import asyncio
import ssl
import tempfile
from pathlib import Path
from typing import NoReturn

from aiohttp import web

from commands.errors import NotFoundError, ValidationError
from commands.routes import CreateRoute, DeleteRoute, RouteSpec, UpdateRoute
from controller.handlers.common import dispatch, found, model, path_app, path_uuid, payload
from controller.http import empty_response, json_response, read_json
from domain.clock import now
from domain.events import RouteCreated, RouteUpdated
from domain.ids import new_id
from domain.objects import Route
from projections.routes import app_route, app_routes


class _EncryptedKeyError(Exception):
    pass


def _no_password() -> NoReturn:
    # Without a callback OpenSSL would prompt on the terminal for an encrypted key's password.
    raise _EncryptedKeyError


def check_certificate(cert: str, key: str) -> None:
    """A PEM certificate (chain) and the private key that matches it, or a 400.

    Flynn HEAD: tls.X509KeyPair in controller/data/route.go. The ssl module reads key
    pairs from files only: they go to a private temporary directory, removed at once.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_verify_locations(cadata=cert)
    except (ssl.SSLError, ValueError, TypeError):  # TypeError: not ASCII
        raise ValidationError("", "Certificate invalid: tls_cert is not PEM") from None
    with tempfile.TemporaryDirectory(prefix="evenflow-tls-") as directory:
        cert_file, key_file = Path(directory, "cert.pem"), Path(directory, "key.pem")
        cert_file.write_text(cert)
        key_file.write_text(key)
        try:
            context.load_cert_chain(cert_file, key_file, password=_no_password)
        except _EncryptedKeyError:
            raise ValidationError("", "Certificate invalid: tls_key is encrypted") from None
        except ssl.SSLError as exc:
            reason = (
                "tls_key does not match tls_cert"
                if exc.reason == "KEY_VALUES_MISMATCH"
                else "tls_key is not a PEM private key"
            )
            raise ValidationError("", f"Certificate invalid: {reason}") from None


async def route_spec(request: web.Request) -> RouteSpec:
    """The body as a RouteSpec, its TLS pair checked when both halves are given."""
    spec = RouteSpec.from_json(await read_json(request))
    if spec.type == "http" and spec.tls_cert and spec.tls_key:
        await asyncio.to_thread(check_certificate, spec.tls_cert, spec.tls_key)
    return spec


def path_route(request: web.Request, app_id: str) -> Route:
    """The app's route named by `{type}/{id}`; another app's route is a bare 404."""
    route_type = request.match_info["type"]
    if route_type not in ("http", "tcp"):
        raise NotFoundError()
    route_id = path_uuid(request, "id")
    route: Route = found(app_route(model(request).state, app_id, route_type, route_id))
    return route


async def create_route(request: web.Request) -> web.Response:
    spec = await route_spec(request)
    command = CreateRoute(new_id(), now(), path_app(request).id, spec)
    return json_response(payload(await dispatch(request, command), RouteCreated))


async def list_routes(request: web.Request) -> web.Response:
    app = path_app(request)
    return json_response(model(request).encode_list(app_routes(model(request).state, app.id)))


async def get_route(request: web.Request) -> web.Response:
    return json_response(model(request).encode(path_route(request, path_app(request).id)))


async def update_route(request: web.Request) -> web.Response:
    spec = await route_spec(request)
    route = path_route(request, path_app(request).id)
    command = UpdateRoute(route.app_id or "", route.type, route.id, now(), spec)
    return json_response(payload(await dispatch(request, command), RouteUpdated))


async def delete_route(request: web.Request) -> web.Response:
    route = path_route(request, path_app(request).id)
    await dispatch(request, DeleteRoute(route.app_id or "", route.type, route.id, now()))
    return empty_response()
