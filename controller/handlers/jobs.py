"""Jobs: POST/GET /apps/{app}/jobs, GET/PUT/DELETE /apps/{app}/jobs/{job}, GET /active-jobs
(Flynn: controller/jobs.go)."""

from __future__ import annotations

from aiohttp import web

from commands.jobs import KillJob, PutJob, RunJob, report_app, reported_job
from controller import keys
from controller.attach import run_attached, wants_attach
from controller.handlers.common import dispatch, event_from, found, model, path_app, recorded
from controller.http import empty_response, encode_json, json_response, read_json
from controller.visibility import limited_to, visible_release
from domain.clock import now
from domain.events import JobStateChanged
from domain.ids import new_id
from domain.objects import JSON, Job
from projections.jobs import active_jobs, app_jobs, find_job


def _run_answer(job: Job) -> JSON:
    """Flynn SEED answers {id, release, cmd}; HEAD adds uuid and host_id."""
    doc: JSON = {"id": job.id, "uuid": job.uuid, "host_id": job.host_id, "release": job.release_id}
    if job.cmd:
        doc["cmd"] = list(job.cmd)
    return doc


async def run_job(request: web.Request) -> web.StreamResponse:
    doc = await read_json(request)
    job_id = f"{request.app[keys.SETTINGS].host_id}-{new_id()}"
    command = RunJob.from_json(doc, app=path_app(request).id, job_id=job_id, now=now())
    visible_release(request, model(request).state, command.release_id)
    if wants_attach(request):  # Flynn's `flynn run`: 101, then the job's streams
        return await run_attached(request, command, doc)
    job = event_from(await dispatch(request, command), JobStateChanged).job
    return json_response(encode_json(_run_answer(job)))


async def list_jobs(request: web.Request) -> web.Response:
    read_model = model(request)
    return json_response(read_model.encode_list(app_jobs(read_model.state, path_app(request).id)))


async def get_job(request: web.Request) -> web.Response:
    read_model = model(request)
    job = find_job(read_model.state, path_app(request).id, request.match_info["job"])
    return json_response(read_model.encode(found(job)))


async def put_job(request: web.Request) -> web.Response:
    doc = await read_json(request)
    command = PutJob.from_json(doc, app=request.match_info["app"], now=now())
    if command.release_id is not None:
        visible_release(request, model(request).state, command.release_id)
    record = recorded(await dispatch(request, command), JobStateChanged)
    if record is not None:
        return json_response(record.data)
    # The state it has already: nothing recorded, the job as it stands answers.
    state = model(request).state
    job = reported_job(state, command, report_app(state, command.app))
    return json_response(model(request).encode(found(job)))


async def kill_job(request: web.Request) -> web.Response:
    await dispatch(request, KillJob(path_app(request).id, request.match_info["job"], now()))
    return empty_response()


async def list_active_jobs(request: web.Request) -> web.Response:
    read_model, apps = model(request), limited_to(request)
    if apps is not None:
        mine = [job for job in active_jobs(read_model.state) if job.app_id in apps]
        return json_response(read_model.encode_list(mine))
    return json_response(
        read_model.cached_list("active-jobs", lambda: active_jobs(read_model.state))
    )
