"""The table of deciders: every command has exactly one, and a second one is refused."""

import importlib
import inspect
import pkgutil
from datetime import UTC, datetime

import attrs
import pytest

import commands
from commands.apps import CreateApp, create_app, update_app
from commands.dispatch import HANDLERS, Dispatcher
from commands.types import handler, handlers
from eventstore.memory import InMemoryEventStore
from projections.memory import MemoryReadModel

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def defined_commands() -> set[type]:
    """Every attrs class of the commands package with a `now` field: what a handler sends."""
    found: set[type] = set()
    for module_info in pkgutil.iter_modules(commands.__path__):
        module = importlib.import_module(f"commands.{module_info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            fields = (
                getattr(cls, "__attrs_attrs__", ()) if cls.__module__ == module.__name__ else ()
            )
            if any(field.name == "now" for field in fields):
                found.add(cls)
    return found


def test_every_command_the_package_defines_has_a_decider_and_nothing_else_does():
    """The dispatcher's table holds exactly the package's commands."""
    assert len(defined_commands()) >= 20
    assert set(HANDLERS) == defined_commands()


def test_a_command_type_registered_twice_is_refused():
    """Two deciders for one command type fail the table's construction, naming the type."""
    with pytest.raises(ValueError, match="CreateApp is registered twice"):
        handlers(handler(CreateApp, create_app), handler(CreateApp, update_app))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="CreateApp"):
        handlers(HANDLERS, handler(CreateApp, create_app))


async def test_the_dispatcher_refuses_a_command_it_has_no_decider_for():
    """A command of a type without a decider is a TypeError before anything is decided."""

    @attrs.frozen
    class Unknown:
        now: datetime

    dispatcher = Dispatcher(InMemoryEventStore(), MemoryReadModel())
    with pytest.raises(TypeError, match="no decider for Unknown"):
        await dispatcher.handle(Unknown(T0))
