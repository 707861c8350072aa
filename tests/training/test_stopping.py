"""When a write stops: at its target, on a plateau for documents, never on a plateau for fact tables."""

import pytest

from loramem.errors import LoramemError
from loramem.supervision.examples import Example
from loramem.supervision.stored import ANCHOR, FORGET, RECORD
from loramem.training import TrainConfig
from loramem.training.stopping import (
    DOCUMENT_PATIENCE,
    DOCUMENT_TARGET,
    PLATEAU_FLOOR,
    Stopping,
    required_recall,
    resolve_patience,
    resolve_target,
)


def run(stopping: Stopping, proxies: list[float], recall: float = 0.5) -> int | None:
    """The epoch (1-based) at which `stopping` ends a write whose in-training recall follows `proxies`."""
    for epoch, proxy in enumerate(proxies, 1):
        if stopping.done(proxy, lambda p=proxy: recall if p < 1 else 1.0):
            return epoch
    return None


def test_documents_stop_on_a_plateau_and_fact_tables_do_not():
    doc = [Example("Q?", "A sentence.", kind="qa"), Example("Fill in", "a word", kind="cloze")]
    table = [Example("Q?", "A", kind=RECORD), Example("general?", "answer", kind=ANCHOR)]
    assert resolve_patience(None, doc) == DOCUMENT_PATIENCE
    assert resolve_patience(None, table) == 0
    update = table + [Example("Removed?", "The base model's own answer", kind=FORGET)]  # a fact table's update
    assert (resolve_patience(None, update), resolve_target(None, update)) == (0, 1.0)
    assert resolve_patience(5, table) == 5
    assert (resolve_target(None, doc), resolve_target(None, table), resolve_target(0.8, table)) == (DOCUMENT_TARGET, 1.0, 0.8)
    curve = [0.2, 0.6, 0.92, 0.95, 0.95, 0.95, 0.95]
    plateau = Stopping(1.0, 2)
    assert run(plateau, curve, recall=0.95) == 6  # best at epoch 4, no rise in epochs 5 and 6
    assert plateau.verified == 0.95
    assert run(Stopping(1.0, 0), curve) is None  # a fact table trains on
    assert run(Stopping(1.0, 2), [0.5, 0.6, 0.6, 0.6, 0.6]) is None  # below the floor: no plateau yet


def test_the_target_is_confirmed_by_a_real_read_back():
    stopping = Stopping(1.0, 0)
    assert not stopping.done(1.0, lambda: 0.97)  # the proxy says 100%, the read-back does not
    assert stopping.done(1.0, lambda: 1.0) and stopping.verified == 1.0


def test_a_resumed_write_keeps_its_plateau_count():
    first = Stopping(1.0, 2)
    run(first, [0.95, 0.95])
    resumed = Stopping(1.0, 2, first.state)
    assert resumed.done(0.95, lambda: 0.95)


def test_a_negative_patience_is_refused():
    with pytest.raises(LoramemError, match="patience must be"):
        TrainConfig(patience=-1)


def test_an_update_must_read_back_what_a_write_stops_on():
    """Every record of a fact table; a document's plateau floor, or its target without patience."""
    facts, document = [Example("q", "a", kind=RECORD), Example("p", "b", kind=FORGET)], [Example("q", "a", kind="cloze")]
    assert required_recall(TrainConfig(), facts) == 1.0
    assert required_recall(TrainConfig(), document) == PLATEAU_FLOOR
    assert required_recall(TrainConfig(patience=0), document) == DOCUMENT_TARGET
    assert required_recall(TrainConfig(target_recall=0.8), facts) == 0.8
