"""The HTTP ceiling: a minimal aiohttp app answering Evenflow's routes with a fixed small body.

`python -m bench.ceiling --port P` — what aiohttp alone costs on this machine, measured by
the same load generator in the same run, so Evenflow's figures can be read as ratios.
"""

from __future__ import annotations

import argparse

import uvloop
from aiohttp import web

BODY = b'{"id":"00000000-0000-4000-8000-000000000000","name":"ceiling","meta":{}}'


async def fixed(request: web.Request) -> web.Response:
    return web.Response(body=BODY, content_type="application/json")


async def fixed_after_body(request: web.Request) -> web.Response:
    await request.read()  # a write endpoint at least reads what it is sent
    return web.Response(body=BODY, content_type="application/json")


def make_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/apps", fixed)
    app.router.add_get("/apps/{app}", fixed)
    app.router.add_post("/apps", fixed_after_body)
    app.router.add_get("/events", fixed)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # The same event loop as the service (controller/__main__.py), so that the ratios
    # compare our code with aiohttp's alone, not one loop with another.
    web.run_app(
        make_app(),
        host="127.0.0.1",
        port=args.port,
        access_log=None,
        print=None,
        loop=uvloop.new_event_loop(),
    )


if __name__ == "__main__":
    main()
