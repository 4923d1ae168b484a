"""What folding needs of each journal line, computed from the line alone.

A fold (journal_index.py) spends about half its time on work that depends on nothing but the line
itself: decoding the JSON, checking the record against the schema, reducing a run to its index row,
reading its change facts and idea key. :func:`prepared` does that work for a list of parsed lines;
the fold then adds each run to the novelty index and the registry and inserts its row.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ..ledger.journal import LedgerLine
from ..ledger.model import Run
from ..novelty.guard import idea_key, run_facts, run_words
from .records import run_from_record


def run_row(run: Run, line_no: int) -> tuple:
    """A run's row in the index's ``runs`` table: :meth:`Run.row_values`, then the query-only columns."""
    knobs = ",".join(dict.fromkeys(str(c.get("name")) for c in run.change_signature if c.get("name"))) or None
    key = run.extra.get("import_key")
    return (*run.row_values(), line_no, ",".join(run.tags) or None, ",".join(run.categories) or None, knobs,
            key if isinstance(key, str) else None)


def prepared(lines: Iterable[LedgerLine], first_run: int) -> Iterator[tuple]:
    """Per line, what the fold needs (``first_run``: the index the first run among them gets):

    * ``("run", row, facts, words, run)`` -- the run's index row (:func:`run_row`), its change facts
      and text tokens (``novelty.run_facts``, ``novelty.run_words``) and the :class:`Run` with its
      idea key set;
    * ``("event", line_no, offset, record)``;
    * ``("skip", line_no, offset, problem)`` for a line that is not a valid record.
    """
    index = first_run
    for line in lines:
        record = line.record
        if record is None:
            yield ("skip", line.line_no, line.offset, line.problem or "unreadable")
        elif record.get("record_type") == "event":
            yield ("event", line.line_no, line.offset, record)
        else:
            run = run_from_record(record, index, line.offset)
            facts = run_facts(run)
            run.idea_key = idea_key(run, facts)
            yield ("run", run_row(run, line.line_no), facts, run_words(run), run)
            index += 1
