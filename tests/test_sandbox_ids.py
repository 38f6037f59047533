"""Contact ids encode their index (100,000 contacts need no id table) and look like Dialfire's."""

from __future__ import annotations

import json
import random
import re

import requests

from dialfire_sandbox import Sandbox
from dialfire_sandbox.world import World

ID = re.compile(r"^[23456789ABCDEFGHJKLMNPQRSTUVWXYZ]{16}$")


def test_every_id_maps_back_to_its_contact_and_nothing_else_does() -> None:
    world = World(seed=4, contacts=100_000, tick=False)
    sample = [0, 1, 2, 99_999, *random.Random(1).sample(range(100_000), 2_000)]
    ids = [world.contact_id(i) for i in sample]
    assert all(ID.match(i) for i in ids)
    assert [world.contact_index(i) for i in ids] == sample
    assert len(set(ids)) == len(ids)
    other = World(seed=5, contacts=100_000, tick=False)
    assert all(other.contact_index(i) is None for i in ids[:200])  # another campaign's ids
    rng = random.Random(2)
    guessed = ["".join(rng.choice("23456789ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(16))
               for _ in range(2_000)]
    assert all(world.contact_index(g) is None for g in guessed)
    assert world.contact_index("short") is None and world.contact_index("a" * 16) is None


def test_unknown_ids_are_omitted_from_a_fetch(sandbox: Sandbox) -> None:
    world = sandbox.world
    beyond = World(seed=7, contacts=100, tick=False).contact_id(80)  # same seed, index >= 60
    ids = [world.contact_id(3), beyond, "NOTACONTACT23456", world.contact_id(59)]
    response = requests.post(f"{sandbox.url}/api/campaigns/{sandbox.campaign_id}/contacts/",
                             params={"access_token": sandbox.token}, data=json.dumps(ids),
                             timeout=10)
    assert sorted(c["$id"] for c in response.json()) == sorted([ids[0], ids[3]])
    assert all("$md5" not in c for c in response.json())  # without include_md5


def test_more_than_20_ids_is_a_400(sandbox: Sandbox) -> None:
    ids = [sandbox.world.contact_id(i) for i in range(21)]
    url = f"{sandbox.url}/api/campaigns/{sandbox.campaign_id}/contacts/"
    response = requests.post(url, params={"access_token": sandbox.token}, json=ids, timeout=10)
    assert response.status_code == 400 and "20" in response.text
    not_a_list = requests.post(url, params={"access_token": sandbox.token}, data="{}",
                               timeout=10)
    assert not_a_list.status_code == 400
