"""The domain migration decider: one decision copies routes and finishes the migration."""

from datetime import UTC, datetime

import pytest

from commands.apps import CreateApp, create_app
from commands.domains import MigrateDomain, migrate_domain
from commands.errors import ValidationError
from commands.routes import CreateRoute, RouteSpec, create_route
from domain.events import DomainMigrated, Event, RouteCreated
from projections.routes import current_domain
from projections.state import State, apply

T0 = datetime(2026, 1, 1, tzinfo=UTC)
APP = "00000000-0000-4000-8000-00000000000a"
MIGRATION = "00000000-0000-4000-8000-0000000000ff"
ROUTE_PREFIX = "00000000-0000-4000-9000-"


def fold(state: State, events: list[Event]) -> list[Event]:
    for event in events:
        apply(state, event, T0)
    return events


def history(*domains: str) -> State:
    """An app "web" on old.io (its default route), plus "/" routes on the given domains."""
    state = State()
    app = CreateApp(APP, T0, "web", default_route_domain="old.io", route_id=ROUTE_PREFIX + "0" * 12)
    fold(state, create_app(state, app))
    for n, domain in enumerate(domains, 1):
        spec = RouteSpec(type="http", domain=domain, service="web-web")
        fold(
            state,
            create_route(state, CreateRoute(f"00000000-0000-4000-9000-{n:012d}", T0, APP, spec)),
        )
    return state


def migrate(state: State, old: str = "old.io", new: str = "new.io") -> list[Event]:
    command = MigrateDomain(MIGRATION, T0, old, new, configured_domain="old.io")
    return fold(state, migrate_domain(state, command))


def test_only_the_old_domain_and_its_subdomains_are_copied():
    """ "xold.io" merely ends with the old domain: unlike Flynn's worker, it is not copied."""
    events = migrate(history("old.io", "api.old.io", "xold.io"))
    copied = sorted(e.route.domain for e in events if isinstance(e, RouteCreated))
    assert copied == ["api.new.io", "new.io", "web.new.io"]


def test_the_decision_starts_copies_and_finishes_in_that_order():
    """Started (no finished_at), the copies, then finished (finished_at = now)."""
    events = migrate(history())
    assert [type(e) for e in events] == [DomainMigrated, RouteCreated, DomainMigrated]
    start, _, finish = events
    assert isinstance(start, DomainMigrated) and isinstance(finish, DomainMigrated)
    assert (start.migration.finished_at, finish.migration.finished_at) == (None, T0)


def test_copy_ids_depend_only_on_the_migration_and_the_route():
    """A decision made twice on the same history copies routes under the same ids."""
    first = [e.route.id for e in migrate(history("old.io")) if isinstance(e, RouteCreated)]
    second = [e.route.id for e in migrate(history("old.io")) if isinstance(e, RouteCreated)]
    assert first == second and len(set(first)) == 2


def test_the_finished_migration_makes_its_domain_current():
    """Before: the configured domain; after: the migration's, and the old one is refused."""
    state = history()
    assert current_domain(state, "old.io") == "old.io"
    migrate(state)
    assert current_domain(state, "old.io") == "new.io"
    with pytest.raises(ValidationError) as raised:
        migrate(state)
    assert raised.value.message == 'Can\'t migrate from "old.io" when currently using "new.io"'
