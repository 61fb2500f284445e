"""Who plans which groups when several nodes share a PostgreSQL state: groups that share
members (a set, in planning order) are claimed by one node, whole or not at all."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from builders import outbox_record

from scheduler.app.pgstore import PgStore
from scheduler.app.store import Store
from scheduler.core.config import Service

SETS = [("alpha", "beta"), ("gamma",)]     # alpha and beta share a member; gamma shares nobody


def test_a_set_of_groups_sharing_members_goes_to_one_node_until_its_commit(pg_url):
    """The first node claims both sets; a second finds all of them taken, then gets them after the commit."""
    with PgStore(pg_url, Service()) as one, PgStore(pg_url, Service()) as two:
        assert one.claim_groups(SETS) == ["alpha", "beta", "gamma"]
        assert two.claim_groups(SETS) == []
        one.commit()
        assert two.claim_groups(SETS) == ["alpha", "beta", "gamma"]


def test_a_node_that_draws_the_sets_differently_never_plans_a_claimed_group(pg_url):
    """Mid-reload, a node whose config no longer links beta to alpha still finds beta taken."""
    with PgStore(pg_url, Service()) as one, PgStore(pg_url, Service()) as two:
        assert one.claim_groups([("alpha", "beta")]) == ["alpha", "beta"]
        assert two.claim_groups([("beta",), ("gamma",)]) == ["gamma"]


def test_a_set_partly_taken_elsewhere_is_left_whole(pg_url):
    """A node holding beta alone keeps the other from planning alpha with it: the set is not split."""
    with PgStore(pg_url, Service()) as one, PgStore(pg_url, Service()) as two:
        assert one.claim_groups([("beta",)]) == ["beta"]
        assert two.claim_groups(SETS) == ["gamma"]


def test_a_reader_and_a_tinydb_state_claim_everything(pg_url, tmp_path):
    """A dry run takes no lock (it records nothing); a TinyDB state has one owner, which plans all."""
    with PgStore(pg_url, Service()) as node, PgStore(pg_url, Service(), lock=False) as reader:
        node.claim_groups(SETS)
        assert reader.claim_groups(SETS) == ["alpha", "beta", "gamma"]
    with Store(tmp_path / "state.json") as store:
        assert store.claim_groups(SETS) == ["alpha", "beta", "gamma"]


def test_a_node_still_sending_keeps_its_claims_past_the_lease(pg_url):
    """Renewed between messages, a 2 s lease held for 3 s is never taken by the other node; left alone it runs out."""
    record = outbox_record(kind="invite", recipient="maya@uni-a.example")
    now = datetime(2027, 1, 1, tzinfo=UTC)
    with PgStore(pg_url, Service(lease_seconds=2)) as one, PgStore(pg_url, Service(lease_seconds=2)) as two:
        one.add_sends([record])
        one.commit()
        assert one.claim_sends([record], now) == [record]
        one.commit()
        for _ in range(6):
            time.sleep(0.5)
            one.keep_claims()
        assert two.claim_sends([record], now) == []
        time.sleep(2.5)   # no renewal: the lease runs out, as a dead node's does
        assert [r.sid for r in two.claim_sends([record], now)] == [record.sid]
