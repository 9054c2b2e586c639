"""The SQL model's rows (projections.sql_tables): what a write sends for each object."""

import attrs
import orjson

from commands.apps import CreateApp
from commands.dispatch import Dispatcher
from domain.objects import App
from eventstore.memory import InMemoryEventStore
from projections.changes import Put
from projections.memory import MemoryReadModel
from projections.sql_tables import APPS, statements
from tests.projections.history import T0, uid


async def test_the_fold_has_the_json_of_what_it_wrote_at_hand_and_nothing_else():
    """After a write, the fold holds the object's JSON (its event's payload), equal to the
    object's encoding; an object it never saw has none."""
    model = MemoryReadModel()
    dispatcher = Dispatcher(InMemoryEventStore(), model)
    dispatcher.start()
    try:
        await dispatcher.handle(CreateApp(id=uid(1), now=T0, name="written"))
    finally:
        await dispatcher.stop()
    written = model.state.apps[uid(1)]
    assert model.encoded(written) == orjson.dumps(written.to_json())
    assert model.encoded(attrs.evolve(written, name="other")) is None


def test_a_row_takes_the_json_at_hand_as_it_is_and_encodes_the_rest():
    """An object whose JSON `encoded` gives is sent as those bytes, not encoded again; one
    it has none of is encoded."""
    at_hand = App(id=uid(1), name="at-hand", created_at=T0, updated_at=T0)
    other = App(id=uid(2), name="other", created_at=T0, updated_at=T0)

    def encoded(obj: object) -> bytes | None:
        return b'{"given":"as it is"}' if obj is at_hand else None

    puts = {uid(1): Put(at_hand, 1, None), uid(2): Put(other, 2, None)}
    [statement] = list(statements(APPS, puts, encoded))
    docs = [item["doc"] for item in orjson.loads(statement)]
    assert docs == [{"given": "as it is"}, other.to_json()]
