"""Every answer a read model gives: two models that agree here agree on every query."""

from __future__ import annotations

from typing import Any

from projections.read_model import ReadModel
from tests.projections.history import uid


async def every_answer(model: ReadModel, snapshot: dict[str, Any]) -> dict[str, Any]:
    """Every query of the protocol, for every object the snapshot names (and a missing one)."""
    answers: dict[str, Any] = {
        "last_event_id": await model.last_event_id(),
        "apps": await model.apps(),
        "releases": await model.releases(),
        "artifacts": await model.artifacts(),
        "providers": await model.providers(),
        "domain_migrations": await model.domain_migrations(),
        "missing": [await model.app(uid(0)), await model.job("none"), await model.route("none")],
    }
    for app_id, app in {**snapshot["deleted_apps"], **snapshot["apps"]}.items():
        answers[f"app {app_id}"] = [
            await model.app(app_id),
            await model.app(app["name"]),
            await model.app(app_id.replace("-", "")),
            await model.app_releases(app_id),
            await model.app_formations(app_id),
            await model.jobs(app_id),
            await model.routes(app_id),
            await model.deployments(app_id),
            await model.app_resources(app_id),
        ]
    for key in [*snapshot["formations"], *snapshot["deleted_formations"]]:
        answers[f"formation {key}"] = await model.formation(*key.split(":"))
    for kind, get in [
        ("releases", model.release),
        ("artifacts", model.artifact),
        ("jobs", model.job),
        ("routes", model.route),
        ("deployments", model.deployment),
        ("resources", model.resource),
    ]:
        for key in snapshot[kind]:
            answers[f"{kind} {key}"] = await get(key)
    for provider_id, provider in snapshot["providers"].items():
        answers[f"provider {provider_id}"] = [
            await model.provider(provider_id),
            await model.provider(provider["name"]),
            await model.resources(provider_id),
        ]
    return answers
