"""The state file's TinyDB table: changes by document id cost what they change and reach the
journal, through TinyDB's public interface only, and behave as TinyDB's own table does."""

from __future__ import annotations

import inspect

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tinydb import Query, TinyDB
from tinydb.storages import MemoryStorage
from tinydb.table import Document, Table

from scheduler.app import journal, statefile
from scheduler.app.statefile import StateDB, StateFile, TrackedTable


def open_db(path):
    storage = StateFile(path)
    return storage, StateDB(storage=lambda: storage)


def journal_lines(path) -> list[dict]:
    return [journal.decode(line) for line in journal.journal_path(path).read_bytes().splitlines()]


def test_no_private_tinydb_method_is_overridden():
    """TrackedTable replaces only public Table methods, so a TinyDB release may change its internals freely."""
    private = {name for name in vars(TrackedTable)
               if name.startswith("_") and not name.startswith("__") and hasattr(Table, name)}
    assert private == set()


@pytest.mark.parametrize("name", ["insert", "insert_multiple", "update", "remove", "truncate"])
def test_replaced_methods_keep_tinydbs_parameters(name):
    """Each replaced method takes the parameters TinyDB's own does (a release that changes them fails here)."""
    ours = list(inspect.signature(getattr(TrackedTable, name)).parameters)
    theirs = list(inspect.signature(getattr(Table, name)).parameters)
    assert ours == theirs


def test_a_change_by_id_journals_only_that_document(tmp_path, monkeypatch):
    """Updating and removing by id write a journal line naming only the documents changed."""
    monkeypatch.setattr(statefile, "COMPACT_MIN", 1 << 30)
    path = tmp_path / "state.json"
    storage, db = open_db(path)
    table = db.table("t")
    ids = table.insert_multiple({"n": n} for n in range(50))
    storage.commit()  # the first commit writes the whole file
    table.update({"n": -1}, doc_ids=[ids[3]])
    table.remove(doc_ids=[ids[7]])
    table.update(lambda doc: doc.update(n=-2), doc_ids=[ids[9], 999])
    assert storage.commit()
    assert journal_lines(path)[-1]["tables"] == {"t": {"4": {"n": -1}, "8": None, "10": {"n": -2}}}
    storage.close()
    storage, db = open_db(path)
    assert db.table("t").get(doc_id=4) == {"n": -1} and db.table("t").get(doc_id=8) is None
    assert len(db.table("t")) == 49
    storage.close()


def test_a_change_by_query_is_written_whole(tmp_path):
    """A change by query goes through TinyDB's own code; the next commit rewrites the file, and nothing is lost."""
    path = tmp_path / "state.json"
    storage, db = open_db(path)
    db.table("t").insert_multiple({"n": n} for n in range(10))
    storage.commit()
    generation = storage.generation
    assert db.table("t").update({"big": True}, Query().n > 6) == [8, 9, 10]
    assert db.table("t").remove(Query().n < 2) == [1, 2]
    assert storage.dirty and storage.commit()
    assert storage.generation == generation + 1 and storage.journal_bytes == 0
    storage.close()
    storage, db = open_db(path)
    assert sorted(d["n"] for d in db.table("t")) == list(range(2, 10))
    assert sorted(d.doc_id for d in db.table("t").search(Query().big == True)) == [8, 9, 10]  # noqa: E712
    storage.close()


def test_truncate_empties_the_table_and_writes_everything(tmp_path):
    """truncate() empties the table, is written whole, and ids start again at 1."""
    path = tmp_path / "state.json"
    storage, db = open_db(path)
    db.table("t").insert_multiple([{"n": 1}, {"n": 2}])
    storage.commit()
    db.table("t").truncate()
    assert storage.commit() and storage.journal_bytes == 0
    assert db.table("t").insert({"n": 3}) == 1
    storage.close()


def test_a_removed_newest_id_is_not_given_again(tmp_path):
    """As in TinyDB, removing the newest document does not hand its id to the next insert."""
    storage, db = open_db(tmp_path / "state.json")
    table = db.table("t")
    table.insert_multiple([{"n": 1}, {"n": 2}])
    table.remove(doc_ids=[2])
    assert table.insert({"n": 3}) == 3
    storage.close()


def test_inserting_an_existing_document_id_fails_as_in_tinydb(tmp_path):
    """A Document with a taken id is refused with TinyDB's ValueError; a non-mapping too."""
    storage, db = open_db(tmp_path / "state.json")
    table = db.table("t")
    table.insert({"n": 1})
    with pytest.raises(ValueError, match="already exists"):
        table.insert(Document({"n": 2}, doc_id=1))
    with pytest.raises(ValueError, match="not a Mapping"):
        table.insert([1, 2])  # type: ignore[arg-type]
    assert table.insert(Document({"n": 5}, doc_id=5)) == 5 and table.insert({"n": 6}) == 6
    storage.close()


OPS = st.lists(st.one_of(
    st.tuples(st.just("insert"), st.integers(0, 9)),
    st.tuples(st.just("insert_multiple"), st.lists(st.integers(0, 9), max_size=4)),
    st.tuples(st.just("update"), st.lists(st.integers(1, 30), max_size=4), st.integers(0, 9)),
    st.tuples(st.just("update_fn"), st.lists(st.integers(1, 30), max_size=4)),
    # Unique ids: TinyDB's own table raises halfway through on a repeated id (ours removes it once).
    st.tuples(st.just("remove"), st.lists(st.integers(1, 30), max_size=4, unique=True)),
    st.tuples(st.just("update_query"), st.integers(0, 9)),
    st.tuples(st.just("remove_query"), st.integers(0, 9)),
    st.tuples(st.just("commit")),
), max_size=30)


def apply(table, op) -> object:
    match op:
        case ("insert", n):
            return table.insert({"n": n})
        case ("insert_multiple", ns):
            return table.insert_multiple({"n": n} for n in ns)
        case ("update", ids, n):
            return table.update({"n": n}, doc_ids=ids)
        case ("update_fn", ids):
            return table.update(lambda doc: doc.update(n=doc["n"] + 1), doc_ids=ids)
        case ("remove", ids):
            return table.remove(doc_ids=ids)
        case ("update_query", n):
            return table.update({"q": True}, Query().n == n)
        case ("remove_query", n):
            return table.remove(Query().n == n)
    return None


@settings(max_examples=60, deadline=None)
@given(ops=OPS)
def test_behaves_as_tinydbs_own_table(tmp_path_factory, ops):
    """Any sequence of changes gives the same answers and documents as TinyDB's Table, also after reopening."""
    path = tmp_path_factory.mktemp("s") / "state.json"
    storage, ours = open_db(path)
    theirs = TinyDB(storage=MemoryStorage)
    for op in ops:
        if op == ("commit",):
            storage.commit()
            continue
        assert apply(ours.table("t"), op) == apply(theirs.table("t"), op)
    expected = {d.doc_id: dict(d) for d in theirs.table("t")}
    assert {d.doc_id: dict(d) for d in ours.table("t")} == expected
    storage.commit()
    storage.close()
    storage, reopened = open_db(path)
    assert {d.doc_id: dict(d) for d in reopened.table("t")} == expected
    storage.close()


def test_removing_an_id_twice_in_one_call_removes_it_once(tmp_path):
    """remove(doc_ids=[1, 1]) removes document 1 and says so once (TinyDB's own table raises KeyError)."""
    storage, db = open_db(tmp_path / "state.json")
    table = db.table("t")
    table.insert({"n": 1})
    assert table.remove(doc_ids=[1, 1]) == [1] and len(table) == 0
    storage.close()


# --- loading a large state: the garbage collector paused, a large state frozen (issue 13) -------

def small_state(tmp_path):
    from scheduler.app.store import Store

    path = tmp_path / "state.json"
    with Store(path) as store:
        store.db.table("alerts").insert({"group": "g", "cycle": "2027-03", "day": "2027-03-01"})
        store.commit()
    return path


@pytest.fixture
def gc_state():
    """The collector's state as the test found it, given back afterwards."""
    import gc

    enabled = gc.isenabled()
    yield gc
    gc.unfreeze()
    (gc.enable if enabled else gc.disable)()


def test_the_collector_is_paused_while_loading_and_running_after(tmp_path, monkeypatch, gc_state):
    """While the state is read the collector is off; once the store is open it is on again."""
    from scheduler.app import store as store_module

    path = small_state(tmp_path)
    seen = []
    real = store_module.check_documents
    monkeypatch.setattr(store_module, "check_documents", lambda *a: (seen.append(gc_state.isenabled()), real(*a)))
    gc_state.enable()
    with store_module.Store(path):
        assert gc_state.isenabled()
    assert seen == [False]


def test_a_collector_turned_off_by_the_program_stays_off(tmp_path, gc_state):
    """Loading gives back the collector as it found it."""
    from scheduler.app.store import Store

    path = small_state(tmp_path)
    gc_state.disable()
    with Store(path):
        assert not gc_state.isenabled()


def test_a_large_state_is_frozen_until_the_store_closes(tmp_path, monkeypatch, gc_state):
    """From FREEZE_MIN bytes on, what was loaded is frozen out of the collector's sight while the
    store is open (later collections do not walk it); closing gives it back. Below, nothing is."""
    from scheduler.app.store import Store

    path = small_state(tmp_path)
    gc_state.unfreeze()
    with Store(path, lock=False):
        assert gc_state.get_freeze_count() == 0
    monkeypatch.setattr(statefile, "FREEZE_MIN", 0)
    with Store(path, lock=False):
        assert gc_state.get_freeze_count() > 0
    assert gc_state.get_freeze_count() == 0


def test_a_state_that_fails_to_load_leaves_the_collector_running_and_nothing_frozen(tmp_path, monkeypatch,
                                                                                    gc_state):
    """A damaged state stops with its one line; the collector is back on, nothing frozen."""
    from scheduler.app.store import Store
    from scheduler.core.errors import StateError

    path = small_state(tmp_path)
    raw = path.read_bytes()
    path.write_bytes(raw.replace(b"2027-03-01", b"2027-03-02"))  # still JSON, but not what was summed
    monkeypatch.setattr(statefile, "FREEZE_MIN", 0)
    gc_state.enable()
    gc_state.unfreeze()
    with pytest.raises(StateError, match="checksum does not match"):
        Store(path)
    assert gc_state.isenabled() and gc_state.get_freeze_count() == 0


DOCUMENTS = [
    {"meta": {"1": {"schema": 3, "generation": 7}}, "outbox": {"1": {"name": "Zoë Ó Súilleabháin 山田",
                                                                   "payload": {"dates": ["2027-03-01"], "x": 1.5},
                                                                   "last_error": None, "done": False, "n": -12}}},
    {"items": {"2": {"text": "tab\tquote\" back\\slash \u2028 \U0001F600", "big": 2 ** 62}}},
    {},
]


@pytest.mark.parametrize("document", DOCUMENTS, ids=["unicode-and-types", "escapes", "empty"])
def test_the_fast_parser_reads_what_json_wrote_as_json_reads_it(document):
    """The state's bytes (as friendtor writes them) parse to the same documents with msgspec
    as with the standard library."""
    import json

    raw = json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    assert statefile._parse(raw) == json.loads(raw) == document


@pytest.mark.parametrize("damage, says", [(b"\xff\xfe", "not UTF-8 text"), (b'{"meta": {', "not JSON at line 1"),
                                          (b"\xef\xbb\xbf{}", "not JSON at line 1"), (b"{} x", "not JSON at line 1")])
@pytest.mark.parametrize("fast", [True, False], ids=["msgspec", "json"])
def test_a_damaged_file_is_worded_the_same_with_or_without_the_fast_parser(tmp_path, monkeypatch, damage, says,
                                                                          fast):
    """What msgspec refuses is read again by the standard library, so the one line is the one
    friendtor always gave; the standard library alone reads states as before."""
    from scheduler.core.errors import StateError

    if not fast:
        monkeypatch.setattr(statefile, "_msgspec", None)
    path = tmp_path / "state.json"
    path.write_bytes(damage)
    with pytest.raises(StateError, match=says):
        StateFile(path)


# --- the outbox and `sent` in memory: light documents (issue 13, point 4) ----------------------


def light_state(path):
    """A state with three recipients of one invite, one of them sent, committed and read again."""
    from datetime import UTC, datetime

    from scheduler.app.records import from_doc
    from scheduler.app.store import Store
    from scheduler.core.outbox import Status

    stamp = "2027-03-01T00:00:00Z"
    docs = [{"key": "invite:g:2027-03", "kind": "invite", "group": "g", "recipient": f"m{i}@x.example",
             "name": f"M{i}", "timezone": "Europe/Paris", "payload": {"cycle": "2027-03"}, "status": "pending",
             "attempts": 0, "last_error": None, "message_id": None, "created": stamp, "updated": stamp,
             "due": stamp, "next_attempt": None, "sent_at": None, "expires": "2027-06-01T00:00:00Z"} for i in range(3)]
    with Store(path) as store:
        records = [from_doc(d) for d in docs]
        store.add_sends(records)
        store.update_sends([records[0].moved_on(Status.SENT, message_id="<m0@x.example>",
                                                sent_at=datetime(2027, 3, 1, 12, tzinfo=UTC))])
        assert store.commit()
    return Store(path)


def test_the_big_tables_are_read_light_and_share_repeated_texts(tmp_path):
    """Read from the file, outbox and `sent` documents are light (records.Doc) and answer as the
    dicts did; the texts and payloads they repeat are one object each."""
    from scheduler.app.records import OutboxDoc, SentDoc

    with light_state(tmp_path / "state.json") as store:
        outbox = list(store.storage.table("outbox").values())
        [sent] = store.storage.table("sent").values()
        assert {type(d) for d in outbox} == {OutboxDoc} and type(sent) is SentDoc
        a, b = outbox[1], outbox[2]
        assert a["group"] is b["group"] and a["due"] is b["due"] and a["created"] is b["due"]
        assert a["payload"] is b["payload"] and a["payload"] == {"cycle": "2027-03"}
        assert a["timezone"] is b["timezone"] and a.get("no such field", 5) == 5 and "key" in a
        assert dict(a) == a and a == dict(a) and a != {}
        assert sent["recipient"] == "m0@x.example" and dict(sent)["kind"] == "invite"
        assert store.replies.sent("<m0@x.example>")["key"] == "invite:g:2027-03"
        assert sorted(r.recipient for r in store.open_sends()) == ["m1@x.example", "m2@x.example"]


def test_light_documents_are_written_as_the_dicts_were(tmp_path):
    """A light document changed goes to the journal, and a full rewrite of a light state writes
    the documents it read: the file format is the one friendtor always wrote."""
    import json

    from scheduler.core.outbox import Status

    path = tmp_path / "state.json"
    with light_state(path) as store:
        before = json.loads(path.read_bytes())
        [record] = [r for r in store.open_sends() if r.recipient == "m1@x.example"]
        store.update_sends([record.moved_on(Status.FAILED, last_error="refused")])
        assert store.commit()
        assert journal_lines(path)[-1]["tables"]["outbox"]["2"]["last_error"] == "refused"
    from scheduler.app.store import Store

    with Store(path) as store:   # the journal replayed over the light documents
        store.storage.write(store.storage.read())   # a change the journal cannot say: written whole
        assert store.commit()
    after = json.loads(path.read_bytes())
    before["outbox"]["2"].update(status="failed", last_error="refused", updated=after["outbox"]["2"]["updated"])
    for state in (before, after):
        state["meta"]["1"].pop("generation")
        state.pop("checksum")
    assert after == before


@pytest.mark.parametrize("table, doc", [
    ("outbox", {"extra": 1}),              # a field this friendtor does not know
    ("outbox", {"sent_at": "drop"}),       # a field an older friendtor did not write
    ("sent", {"group": 7}),                # a field of another type: the checks word it
], ids=["extra-field", "missing-field", "mistyped"])
def test_a_table_of_another_shape_is_read_as_dicts(tmp_path, table, doc):
    """One document not of its table's exact shape and the whole table is read as dicts, as
    before: kept as it is (an extra field survives a rewrite), or named by the checks."""
    import json

    from scheduler.app.store import Store
    from scheduler.core.errors import StateError

    path = tmp_path / "state.json"
    light_state(path).close()
    data = json.loads(path.read_bytes())
    data.pop("checksum")
    data["meta"]["1"]["schema"] = 2   # an unchecksummed state: edited here
    [doc_id] = [i for i in data[table] if i == "1"]
    for name, value in doc.items():
        if value == "drop":
            del data[table][doc_id][name]
        else:
            data[table][doc_id][name] = value
    path.write_text(json.dumps(data))
    if table == "sent":
        with pytest.raises(StateError, match="sent record 1 has 'group' as a number, not text"):
            Store(path)
        return
    with Store(path) as store:
        assert all(type(d) is dict for d in store.storage.table(table).values())
        assert len(store.sends()) == 3
        store.storage.write(store.storage.read())
        store.commit()
    assert (json.loads(path.read_bytes())["outbox"]["1"].get("extra") == 1) == ("extra" in doc)


def test_a_journal_document_repeating_a_light_ones_key_is_named(tmp_path):
    """The journal's documents are dicts beside the light ones read from the file: one that
    repeats a light document's key is still named, as the later of the two."""
    import json

    from scheduler.app.store import Store
    from scheduler.core.errors import StateError

    path = tmp_path / "state.json"
    light_state(path).close()
    data = json.loads(path.read_bytes())
    copy = dict(data["outbox"]["2"])
    line = journal.encode({"gen": data["meta"]["1"]["generation"], "tables": {"outbox": {"9": copy}}})
    with open(journal.journal_path(path), "ab") as f:
        f.write(line)
    with pytest.raises(StateError, match=r"outbox record 9 repeats record 2 \(the same sid\)"):
        Store(path)
