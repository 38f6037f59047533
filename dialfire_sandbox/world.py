"""The sandbox's campaign: seeded contacts derived per index, a virtual clock, and an overlay.

Why it is built this way: the sandbox must serve 100,000 contacts without holding them. Every
seeded contact is a pure function of (seed, index): its id encodes its index, its *skeleton*
(creation time, transaction times and kinds) is cheap to recompute, and its full payload is built
only when a client asks for it. The world keeps just compact arrays: each contact's changed time
and one 64-bit key per transaction for the change feed. Contacts touched by `advance` are
materialised once and kept in an overlay, which wins over the seeded version.
"""

from __future__ import annotations

import random
import threading
import time
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dialfire_sandbox.formats import (
    DAY_MS,
    ID_ALPHABET,
    from_ms,
    hashed_id,
    iso_ms,
    md5_hex,
    parse_timestamp_ms,
    to_ms,
)

DEFAULT_NOW = "2026-03-02T09:00:00.000Z"
HISTORY_DAYS = 90
_MINUTE = 60_000

# Transaction kinds. Each kind fixes `type`, whether a user is set and `status_detail`, so the
# change feed can filter seeded transactions from their skeleton without building the payload.
CREATE, AUTO_ASSIGN, AUTO_DIAL, HUMAN_CALL, HUMAN_ASSIGNED, HUMAN_EDIT, REVOKE = range(7)
TASKS = ["fc_erstanruf", "fc_nachfass", "qc_pruefung", "wv_wiedervorlage", "import"]
_IMPORT_TASK = 4

# Contacts picked by index for the awkward cases, so even a 60-contact world has each of them.
_NO_TX = (11, 9)  # idx % 11 == 9: a contact without transactions
_IN_PROGRESS = (15, 3)  # idx % 15 == 3: last transaction fired < 2 min ago, call still running
_SAME_FIRED = (17, 5)  # idx % 17 == 5: two transactions with the same `fired`
_BAD_NUMBER = (23, 4)  # idx % 23 == 4: a number field holding text ("ca. 50")

_INDEX_BITS = 25  # up to 33 million contacts
_INDEX_MASK = (1 << _INDEX_BITS) - 1
_INDEX_MULT = 0x2C9277B5 & _INDEX_MASK | 1
_INDEX_MULT_INV = pow(_INDEX_MULT, -1, 1 << _INDEX_BITS)
_INDEX_POSITIONS = (1, 4, 7, 10, 13)
_ORD_BITS = 5
_IDX_SHIFT = _ORD_BITS
_TIME_SHIFT = _ORD_BITS + _INDEX_BITS
_EPOCH_MARGIN_DAYS = 100

FIELDS: list[dict[str, Any]] = [
    {"type": "field", "fieldType": "text", "name": "Firma", "state": "visible", "deleted": False},
    {"type": "field", "fieldType": "dropdown", "name": "Tätigkeit", "state": "visible",
     "deleted": False, "options": ["Handel", "Handwerk", "Dienstleistung", "Industrie"]},
    {"type": "field", "fieldType": "date", "name": "Geburtstag vom GF/Inhaber", "state": "visible",
     "deleted": False},
    {"type": "field", "fieldType": "text", "name": "Umsatz in €", "state": "visible",
     "deleted": False},
    {"type": "field", "fieldType": "number", "name": "Anzahl Mitarbeiter", "state": "visible",
     "deleted": False},
    {"type": "field", "fieldType": "number", "name": "Umsatz (Mio.)", "state": "visible",
     "deleted": False},
    {"type": "field", "fieldType": "textarea", "name": "Kommentar", "state": "visible",
     "deleted": False},
    {"type": "field", "fieldType": "phone", "name": "Telefon Zentrale", "state": "visible",
     "deleted": False},
    {"type": "field", "fieldType": "calendar", "name": "Rückruf am", "state": "visible",
     "deleted": False},
    {"type": "field", "fieldType": "radiogroup", "name": "Anrede", "state": "visible",
     "deleted": False, "options": ["Herr", "Frau", "Divers"]},
    {"type": "field", "fieldType": "autocomplete", "name": "Ort", "state": "visible",
     "deleted": False},
    {"type": "field", "fieldType": "checkbox", "name": "Newsletter", "state": "visible",
     "deleted": False},
    {"type": "field", "fieldType": "text", "name": "Budget ($)", "state": "visible",
     "deleted": False},
    {"type": "field", "fieldType": "text", "name": "Alte Kundennummer", "state": "hidden",
     "deleted": True},
    {"type": "label", "name": "Hinweis Datenschutz", "state": "visible", "deleted": False,
     "text": "Bitte auf die Einwilligung achten."},
]
DELETED_FIELD = "Alte Kundennummer"

_FIRMS = ["Müller", "Schäfer", "Weiß", "Groß", "Köhler", "Bäcker", "Lange", "Özdemir", "Nowak"]
_SUFFIX = ["GmbH", "GmbH & Co. KG", "AG", "e.K.", "OHG", "UG (haftungsbeschränkt)"]
_CITIES = ["Berlin", "München", "Köln", "Düsseldorf", "Würzburg", "Görlitz", "Lübeck"]
_SENTENCES = [
    "Kunde wünscht Rückruf nach 14 Uhr.",
    "Ansprechpartner ist nur dienstags erreichbar.",
    "Hat Interesse an einem Angebot für \"Premium\" & Wartung <2 Jahre>.",
    "Zentrale verbindet nicht weiter; Durchwahl erfragt.",
    "Umzug geplant - neue Adresse folgt.",
    "Budget für Q3 freigegeben, Entscheidung im Gremium.",
    "Bitte keine Anrufe am Freitag.",
    "Gesprächsnotiz: Wettbewerber ist günstiger, aber Service schlechter.",
]
_USERS = [
    ("anna.schmidt", "Berlin"), ("jonas.weber", "Berlin"), ("lea.fischer", "Hamburg"),
    ("mehmet.yilmaz", "Hamburg"), ("sofia.wagner", "Leipzig"),
]
_TENANT = "acme-callcenter"
_DETAILS = {
    "success": ["termin_vereinbart", "angebot_angefordert", "verkauft"],
    "failed": ["kein_interesse", "falsche_nummer", "nicht_erreicht"],
    "open": ["$none", "wiedervorlage"],
}


@dataclass(frozen=True)
class TxSkeleton:
    """What the feed needs to know of a transaction without building it."""

    fired_ms: int
    kind: int
    task: int
    in_progress: bool = False


@dataclass(frozen=True)
class Skeleton:
    created_ms: int
    transactions: tuple[TxSkeleton, ...]

    @property
    def changed_ms(self) -> int:
        return max([self.created_ms, *(t.fired_ms for t in self.transactions)])


@dataclass
class TxState:
    """Times and revision of one transaction of a materialised contact."""

    fired_ms: int
    modified_ms: int
    rev: int = 0


@dataclass
class ContactState:
    """A contact changed by `advance`: its full payload (without `$md5`) and bookkeeping."""

    payload: dict[str, Any]
    transactions: list[TxState]
    rev: int
    changed_ms: int
    in_progress: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class FeedEntry:
    time_ms: int
    idx: int
    ordinal: int
    fired: str
    md5: str
    contact_id: str
    position: str = ""  # "taskLogIndex,transactionIndex" when legacy_feed_entries is on

    def text(self) -> str:
        parts = [self.fired, self.md5, self.contact_id] + ([self.position] if self.position else [])
        return "|".join(parts)


def kind_is_update(kind: int) -> bool:
    return kind != CREATE


def kind_is_human(kind: int) -> bool:
    """The contract's human-interaction rule, as the kinds below build their transactions."""
    return kind in (HUMAN_CALL, HUMAN_EDIT, REVOKE)


class World:
    """One campaign: seeded history before `now`, and whatever `advance` has added since."""

    def __init__(
        self,
        seed: int = 7,
        contacts: int = 100,
        campaign_id: str | None = None,
        now: datetime | str | None = None,
        feed_time: str = "fired",
        tick: bool = True,
        call_data_moves_contact: bool = True,
        legacy_feed_entries: bool = False,
    ) -> None:
        if feed_time not in ("fired", "modified"):
            raise ValueError("feed_time must be 'fired' or 'modified'")
        if not 0 <= contacts < (1 << _INDEX_BITS) // 2:
            raise ValueError("contacts must be between 0 and 16 million")
        self.seed = seed
        self.seeded_contacts = contacts
        self.campaign_id = campaign_id or hashed_id("campaign", seed)
        self.feed_time = feed_time
        # The contract's section 7 unknown: does a contact's changed day (contacts/list) move when
        # only one of its transactions changes? True: yes (the assumption); False: it does not.
        self.call_data_moves_contact = call_data_moves_contact
        # Older servers appended `taskLogIndex,transactionIndex` as a fourth feed part.
        self.legacy_feed_entries = legacy_feed_entries
        self.lock = threading.RLock()
        if isinstance(now, datetime):
            self.initial_now_ms = to_ms(now)
        else:
            self.initial_now_ms = parse_timestamp_ms(now or DEFAULT_NOW)
        self._tick = tick
        self._started = time.monotonic()
        self._advanced_ms = 0
        self._epoch_ms = self.initial_now_ms - _EPOCH_MARGIN_DAYS * DAY_MS
        self._index_mask = int(hashed_id("mask", seed).encode().hex(), 16) & _INDEX_MASK
        self._task_ids = {name: hashed_id("task", seed, name) for name in TASKS}
        self.fields: list[dict[str, Any]] = [dict(f) for f in FIELDS]
        self.added_fields: list[str] = []
        self.overlay: dict[int, ContactState] = {}
        self.total_contacts = contacts
        self.extra_inbound: list[dict[str, Any]] = []
        self.advances = 0
        self.version = 0  # bumps on every change; caches key on it
        self._listing: tuple[int, array] | None = None
        self.seeded_inbound = max(20, contacts // 4)
        self._changed = array("q")
        keys = array("Q")
        self._pending_in_progress: list[int] = []
        for idx in range(contacts):
            skel = self.skeleton(idx)
            self._changed.append(skel.changed_ms)
            for ordinal, tx in enumerate(skel.transactions):
                keys.append(self._feed_key(tx.fired_ms, idx, ordinal))
                if tx.in_progress:
                    self._pending_in_progress.append(idx)
        self._feed_keys = array("Q", sorted(keys))
        del keys

    # ------------------------------------------------------------------ the clock
    def now_ms(self) -> int:
        elapsed = int((time.monotonic() - self._started) * 1000) if self._tick else 0
        return self.initial_now_ms + self._advanced_ms + elapsed

    def now(self) -> datetime:
        return from_ms(self.now_ms())

    # ------------------------------------------------------------------ ids
    def contact_id(self, idx: int) -> str:
        """The contact's id: 16 id characters, five of which encode the (scrambled) index."""
        scrambled = ((idx * _INDEX_MULT) & _INDEX_MASK) ^ self._index_mask
        chars = list(hashed_id("contact", self.seed, idx))
        for n, position in enumerate(_INDEX_POSITIONS):
            chars[position] = ID_ALPHABET[(scrambled >> (5 * (4 - n))) & 31]
        return "".join(chars)

    def contact_index(self, contact_id: str) -> int | None:
        """The index a contact id encodes, or None when no contact of this world has it."""
        if len(contact_id) != 16 or any(c not in ID_ALPHABET for c in contact_id):
            return None
        scrambled = 0
        for position in _INDEX_POSITIONS:
            scrambled = (scrambled << 5) | ID_ALPHABET.index(contact_id[position])
        idx = ((scrambled ^ self._index_mask) * _INDEX_MULT_INV) & _INDEX_MASK
        if idx >= self.total_contacts or self.contact_id(idx) != contact_id:
            return None
        return idx

    def task_id(self, task: str) -> str:
        return self._task_ids.get(task) or hashed_id("task", self.seed, task)

    # ------------------------------------------------------------------ seeded skeletons
    def _rng(self, *parts: object) -> random.Random:
        return random.Random("|".join(map(str, (self.seed, *parts))))

    def skeleton(self, idx: int) -> Skeleton:
        """Creation time and transaction times/kinds of seeded contact `idx` (cheap, pure)."""
        rng = random.Random((self.seed << 32) ^ idx)
        now = self.initial_now_ms
        created = now - rng.randint(2 * DAY_MS, HISTORY_DAYS * DAY_MS)
        if idx % _NO_TX[0] == _NO_TX[1]:
            return Skeleton(created, ())
        count = rng.randint(1, 5)
        last_possible = now - 10 * _MINUTE
        times = sorted(
            [created + rng.randint(1000, 60_000)]
            + [rng.randint(created + 1000, last_possible) for _ in range(count - 1)]
        )
        txs: list[TxSkeleton] = []
        for n, fired in enumerate(times):
            if n == 0:
                kind = CREATE if rng.random() < 0.5 else AUTO_ASSIGN
                task = _IMPORT_TASK if kind == CREATE else rng.randrange(4)
            else:
                roll = rng.random()
                kind = (
                    HUMAN_CALL if roll < 0.45 else AUTO_DIAL if roll < 0.65
                    else HUMAN_ASSIGNED if roll < 0.75 else HUMAN_EDIT if roll < 0.92 else REVOKE
                )
                task = rng.randrange(4)
            txs.append(TxSkeleton(fired, kind, task))
        if idx % _SAME_FIRED[0] == _SAME_FIRED[1]:
            # A human call and the agent's edit saved in the same millisecond.
            fired = txs[-1].fired_ms if len(txs) > 1 else created + rng.randint(60_000, DAY_MS)
            base = TxSkeleton(fired, HUMAN_CALL, txs[-1].task if len(txs) > 1 else 0)
            txs = [*txs[:-1], base] if len(txs) > 1 else [*txs, base]
            txs.append(TxSkeleton(fired, HUMAN_EDIT, base.task))
        if idx % _IN_PROGRESS[0] == _IN_PROGRESS[1]:
            fired = now - rng.randint(5_000, 110_000)
            txs.append(TxSkeleton(fired, HUMAN_CALL, rng.randrange(4), in_progress=True))
        return Skeleton(created, tuple(txs))

    def _feed_key(self, time_ms: int, idx: int, ordinal: int) -> int:
        return ((time_ms - self._epoch_ms) << _TIME_SHIFT) | (idx << _IDX_SHIFT) | ordinal

    def _unpack_key(self, key: int) -> tuple[int, int, int]:
        return (
            (key >> _TIME_SHIFT) + self._epoch_ms,
            (key >> _IDX_SHIFT) & _INDEX_MASK,
            key & ((1 << _ORD_BITS) - 1),
        )

    # ------------------------------------------------------------------ payloads
    def contact(self, idx: int) -> dict[str, Any]:
        """The contact's flat view (a fresh copy, without `$md5`)."""
        state = self.overlay.get(idx)
        if state is not None:
            return _deep_copy(state.payload)
        return self._seeded_payload(idx, self.skeleton(idx))

    def contact_md5(self, idx: int) -> str:
        state = self.overlay.get(idx)
        return md5_hex(f"{self.campaign_id}|{self.contact_id(idx)}|{state.rev if state else 0}")

    def contact_changed_ms(self, idx: int) -> int:
        state = self.overlay.get(idx)
        return state.changed_ms if state is not None else self._changed[idx]

    def transaction_md5(self, contact_id: str, ordinal: int, rev: int) -> str:
        return md5_hex(f"{contact_id}|{ordinal}|{rev}")

    def all_contact_indexes(self) -> range:
        return range(self.total_contacts)

    def _user(self, rng: random.Random) -> dict[str, Any]:
        login, branch = rng.choice(_USERS)
        return {
            "user": f"{login}@{_TENANT}",
            "user_loginName": login,
            "user_branch": branch,
            "user_tenantAlias": _TENANT,
        }

    def _seeded_payload(self, idx: int, skel: Skeleton) -> dict[str, Any]:
        rng = self._rng("payload", idx)
        cid = self.contact_id(idx)
        payload = self._contact_head(idx, cid, skel.created_ms, rng)
        payload.update(self._custom_values(idx, rng, added=()))
        payload["$task_log"] = []
        for ordinal, tx in enumerate(skel.transactions):
            self._append_transaction(payload, self._build_transaction(cid, ordinal, tx, rng))
        return payload

    def _contact_head(
        self, idx: int, cid: str, created_ms: int, rng: random.Random
    ) -> dict[str, Any]:
        entry = iso_ms(created_ms + rng.randint(0, 3_600_000)) if rng.random() < 0.7 else ""
        follow_ms = self.initial_now_ms + rng.randint(1, 20) * DAY_MS
        follow = iso_ms(follow_ms) if rng.random() < 0.3 else ""
        return {
            "$id": cid,
            "$ref": f"CRM-{idx:07d}" if rng.random() < 0.8 else "",
            "$version": hashed_id("version", self.seed, idx, 0),
            "$campaign_id": self.campaign_id,
            "$task_id": "",
            "$task": "",
            "$status": "open",
            "$status_detail": "$none",
            "$created_date": iso_ms(created_ms),
            "$entry_date": entry,
            "$owner": rng.choice(["", "", _USERS[0][0], _USERS[2][0]]),
            "$follow_up_date": follow,
            "$phone": f"+49 {rng.randint(30, 99)} {rng.randint(100000, 9999999)}",
            "$timezone": "Europe/Berlin",
            "$caller_id": "" if rng.random() < 0.6 else "+49 30 555000",
            "$source": rng.choice(["import_2026-01.csv", "api", ""]),
            "$comment": "",
            "$error": "",
            "$recording": "",
            "$recording_url": "",
            "$call_order": "",
            "$trigger": "",
        }

    def _custom_values(
        self, idx: int, rng: random.Random, added: tuple[str, ...] | list[str]
    ) -> dict[str, Any]:
        def maybe(value: Any, p: float = 0.8) -> Any:
            return value if rng.random() < p else ""

        firm = f"{rng.choice(_FIRMS)} {rng.choice(['Bau', 'Logistik', 'IT', 'Feinkost'])}"
        values: dict[str, Any] = {
            "Firma": f"{firm} {rng.choice(_SUFFIX)}",
            "Tätigkeit": maybe(rng.choice(["Handel", "Handwerk", "Dienstleistung", "Industrie"])),
            "Geburtstag vom GF/Inhaber": maybe(
                f"{rng.randint(1950, 1995)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}", 0.4
            ),
            "Umsatz in €": maybe(f"{rng.randint(1, 900) * 1000:,} €".replace(",", "."), 0.5),
            "Anzahl Mitarbeiter": maybe(rng.randint(1, 2500), 0.7),
            "Umsatz (Mio.)": maybe(rng.randint(10, 99999) / 100 + 0.005, 0.6),
            "Kommentar": "",
            "Telefon Zentrale": maybe(f"+49 {rng.randint(30, 99)} {rng.randint(10000, 999999)}-0"),
            "Rückruf am": "",
            "Anrede": maybe(rng.choice(["Herr", "Frau", "Divers"])),
            "Ort": maybe(rng.choice(_CITIES)),
            "Newsletter": rng.choice(["true", "false", ""]),
            "Budget ($)": maybe(f"{rng.randint(1, 50) * 500}", 0.3),
        }
        if isinstance(values["Umsatz (Mio.)"], float):
            values["Umsatz (Mio.)"] = round(values["Umsatz (Mio.)"], 3)
        if rng.random() < 0.5:
            lines = [rng.choice(_SENTENCES) for _ in range(rng.randint(2, 12))]
            if rng.random() < 0.15:  # a long note pasted from an e-mail
                lines = lines * 20
            values["Kommentar"] = "\n".join(lines)
        if idx % _BAD_NUMBER[0] == _BAD_NUMBER[1]:
            values["Anzahl Mitarbeiter"] = "ca. 50"
        if idx % 3 == 0:
            values[DELETED_FIELD] = f"K-{rng.randint(10000, 99999)}"
        for name in added:
            values[name] = self._added_field_value(idx, name)
        return values

    def _build_transaction(
        self, cid: str, ordinal: int, tx: TxSkeleton, rng: random.Random
    ) -> dict[str, Any]:
        task = TASKS[tx.task]
        human = tx.kind in (HUMAN_CALL, HUMAN_ASSIGNED, HUMAN_EDIT, REVOKE)
        user = self._user(rng) if human else {
            "user": None, "user_loginName": "", "user_branch": "", "user_tenantAlias": "",
        }
        status, detail = "open", "$none"
        if tx.kind in (AUTO_ASSIGN, HUMAN_ASSIGNED):
            detail = "$assigned"
        elif tx.kind == REVOKE:
            status, detail = "open", "$revoked"
        elif tx.kind in (HUMAN_CALL, HUMAN_EDIT):
            status = rng.choice(["success", "failed", "open"])
            detail = rng.choice(_DETAILS[status])
        elif tx.kind == AUTO_DIAL:
            detail = "nicht_erreicht"
        if tx.in_progress:
            status, detail = "open", "$none"
        data: dict[str, Any] = {"$status": status, "$status_detail": detail}
        if tx.kind == HUMAN_EDIT:
            data["Kommentar"] = rng.choice(_SENTENCES)
            data["Ansprechpartner"] = {"name": "Frau Weiß", "durchwahl": "-12"}
        transaction: dict[str, Any] = {
            "id": cid,
            "type": "create" if tx.kind == CREATE else "update",
            "task_id": self.task_id(task),
            "task": task,
            "status": status,
            "status_detail": detail,
            "fired": iso_ms(tx.fired_ms),
            "trigger": {CREATE: "import", AUTO_ASSIGN: "dialer", AUTO_DIAL: "dialer"}.get(
                tx.kind, "manual"
            ),
            **user,
            "actor": "user" if human else ("import" if tx.kind == CREATE else "dialer"),
            "result": {HUMAN_CALL: "connected", AUTO_DIAL: "no_answer"}.get(tx.kind, ""),
            "isHI": kind_is_human(tx.kind),
            "revoked": tx.kind == REVOKE,
            "pause_time_sec": rng.randint(0, 30) if human else 0,
            "edit_time_sec": rng.randint(5, 300) if human else 0,
            "wrapup_time_sec": round(rng.uniform(0, 60), 1) if human else 0,
            "sequence_nr": ordinal + 1,
            "version": hashed_id("txversion", cid, ordinal, 0),
            "campaign_id": self.campaign_id,
            "data": data,
            "connections": [],
        }
        if tx.kind in (HUMAN_CALL, AUTO_DIAL):
            transaction["connections"] = self._connections(cid, ordinal, tx, rng)
        return transaction

    def _connection(
        self, cid: str, key: str, start_ms: int, rng: random.Random, *,
        technology: str, connected: bool, in_progress: bool = False,
    ) -> dict[str, Any]:
        duration = rng.randint(20, 900) if connected else 0
        connect_ms = start_ms + rng.randint(3_000, 25_000)
        end_ms = (connect_ms if connected else start_ms + 30_000) + duration * 1000
        conn: dict[str, Any] = {
            "id": hashed_id("connection", cid, key),
            "technology": technology,
            "call_uuid": _uuid(rng),
            "global_call_uuid": _uuid(rng),
            "task_id": "",
            "phone": f"+49{rng.randint(30, 99)}{rng.randint(100000, 9999999)}",
            "user": "",
            "actor": "dialer",
            "hangup_party": rng.choice(["local", "remote"]) if not in_progress else "",
            "isThirdPartyConnection": False,
            "dialerdomain": "dialer-eu-3.dialfire.com",
            "fired": iso_ms(start_ms),
            "started": iso_ms(start_ms),
            "initiated": iso_ms(start_ms + 200),
            "connected": iso_ms(connect_ms) if connected else "",
            "disconnected": iso_ms(end_ms),
            "ended": iso_ms(end_ms + 150),
            "duration": duration,
            "remote_number": f"+49{rng.randint(30, 99)}{rng.randint(100000, 9999999)}",
            "line_number": "+4930555000",
            "result": "connected" if connected else "no_answer",
            "code": 200 if connected else 480,
            "call_initiated": True,
            "call_connected": connected,
            "call_disconnected": True,
            "transfer_target_address": "",
            "recordings": [],
            "third_party_connections": [],
        }
        if in_progress:
            del conn["disconnected"]
            conn.update(ended="", duration="", call_disconnected=False, result="")
        elif connected and rng.random() < 0.6:
            conn["recordings"] = [self._recording(conn, connect_ms, end_ms, rng)]
        return conn

    def _recording(
        self, conn: dict[str, Any], start_ms: int, stop_ms: int, rng: random.Random
    ) -> dict[str, Any]:
        name = f"{conn['call_uuid']}.mp3"
        located = rng.random() < 0.75
        return {
            "location": f"https://recordings.dialfire.example/{self.campaign_id}/{name}"
            if located else None,
            "filename": name,
            "started": iso_ms(start_ms),
            "stopped": iso_ms(stop_ms),
        }

    def _connections(
        self, cid: str, ordinal: int, tx: TxSkeleton, rng: random.Random
    ) -> list[dict[str, Any]]:
        if tx.kind == AUTO_DIAL:
            start = tx.fired_ms - 40_000
            return [self._connection(cid, f"{ordinal}.0", start, rng, technology="sip",
                                     connected=False)]
        start = tx.fired_ms - (10_000 if tx.in_progress else rng.randint(120_000, 1_200_000))
        first = self._connection(cid, f"{ordinal}.0", start, rng, technology="sip",
                                 connected=True, in_progress=tx.in_progress)
        legs = [first]
        if tx.in_progress:
            return legs
        roll = rng.random()
        if roll < 0.25:  # transferred to a colleague, sometimes twice
            for leg in range(1, rng.randint(2, 3)):
                nxt = self._connection(cid, f"{ordinal}.{leg}", start + leg * 60_000, rng,
                                       technology="transfer", connected=True)
                nxt["transfer_target_address"] = f"sip:{rng.choice(_USERS)[0]}@{_TENANT}"
                legs.append(nxt)
        elif roll < 0.45:  # a conference with an outside party
            third = self._connection(cid, f"{ordinal}.0.tp", start + 30_000, rng,
                                     technology="sip", connected=True)
            third["isThirdPartyConnection"] = True
            third["remote_number"] = "+498912345678"
            first["third_party_connections"] = [third]
        return legs

    def _append_transaction(self, payload: dict[str, Any], tx: dict[str, Any]) -> None:
        """Add a transaction to the task log and refresh the contact's task/status keys."""
        log = payload["$task_log"]
        if log and log[-1]["task_name"] == tx["task"]:
            entry = log[-1]
        else:
            entry = {
                "transactions": [],
                "campaign_id": self.campaign_id,
                "task_id": tx["task_id"],
                "task_name": tx["task"],
                "task_title": tx["task"].split("_", 1)[-1].replace("_", " ").title(),
                "task_type": "phone" if tx["task"] != "import" else "import",
                "task_hi": tx["task"] != "import",
            }
            log.append(entry)
        entry["transactions"].append(tx)
        entry.update(status=tx["status"], status_detail=tx["status_detail"], fired=tx["fired"])
        self._refresh_task_keys(payload, tx)

    def _refresh_task_keys(self, payload: dict[str, Any], tx: dict[str, Any]) -> None:
        task = tx["task"]
        payload["$task_id"] = tx["task_id"]
        payload["$task"] = task
        payload["$status"] = tx["status"]
        payload["$status_detail"] = tx["status_detail"]
        payload[f"$${task}_task"] = task
        payload[f"$${task}_date"] = tx["fired"]
        payload[f"$${task}_status"] = tx["status"]
        payload[f"$${task}_status_detail"] = tx["status_detail"]
        if "Kommentar" in tx["data"]:
            payload["Kommentar"] = tx["data"]["Kommentar"]

    # ------------------------------------------------------------------ transactions
    def transactions_of(self, payload: dict[str, Any]) -> list[dict[str, Any]]:
        return [tx for entry in payload["$task_log"] for tx in entry["transactions"]]

    def _materialise(self, idx: int) -> ContactState:
        state = self.overlay.get(idx)
        if state is not None:
            return state
        skel = self.skeleton(idx)
        state = ContactState(
            payload=self._seeded_payload(idx, skel),
            transactions=[TxState(t.fired_ms, t.fired_ms) for t in skel.transactions],
            rev=0,
            changed_ms=skel.changed_ms,
            in_progress={n for n, t in enumerate(skel.transactions) if t.in_progress},
        )
        self.overlay[idx] = state
        return state

    def _touch(self, idx: int, state: ContactState, at_ms: int, moves: bool = True) -> None:
        state.rev += 1
        if moves:
            state.changed_ms = max(state.changed_ms, at_ms)
        state.payload["$version"] = hashed_id("version", self.seed, idx, state.rev)
        for name in self.added_fields:
            if name not in state.payload:
                state.payload[name] = self._added_field_value(idx, name)

    def _added_field_value(self, idx: int, name: str) -> Any:
        """A value for a field added by `advance`, of the field's type (numbers for `number`)."""
        rng = self._rng("added-field", idx, name)
        kind = next((f.get("fieldType") for f in self.fields if f["name"] == name), "text")
        if rng.random() < 0.1:
            return ""
        if kind == "number":
            return rng.randint(0, 500) if rng.random() < 0.5 else rng.randint(1, 9999) / 8 + 0.01
        if kind == "checkbox":
            return rng.choice(["true", "false"])
        return f"{rng.choice(_SENTENCES)} / {name}"

    # ------------------------------------------------------------------ feed
    def feed(
        self,
        from_ms: int | None,
        to_ms: int | None,
        *,
        updates_only: bool = False,
        human_only: bool = False,
        task_prefixes: tuple[str, ...] = (),
        after: tuple[int, int, int] | None = None,
        limit: int = 1000,
    ) -> tuple[list[FeedEntry], bool]:
        """Feed entries with time in [from, to), ordered by (time, contact index, ordinal).

        Returns (entries, more): `more` tells whether a further page exists.
        """
        lo_ms = self._epoch_ms if from_ms is None else max(from_ms, self._epoch_ms)
        hi_ms = to_ms if to_ms is not None else self.now_ms() + 1
        start_key = self._feed_key(lo_ms, 0, 0)
        if after is not None:
            after_ms, after_idx, after_ord = after
            if after_ms >= lo_ms:
                start_key = max(start_key, self._feed_key(after_ms, after_idx, after_ord) + 1)

        def wanted(kind_update: bool, human: bool, task: str) -> bool:
            if updates_only and not kind_update:
                return False
            if human_only and not human:
                return False
            return not task_prefixes or task.startswith(task_prefixes)

        overlay_items: list[tuple[int, int, int]] = []
        for idx, state in self.overlay.items():
            txs = None
            for ordinal, tstate in enumerate(state.transactions):
                t = tstate.fired_ms if self.feed_time == "fired" else tstate.modified_ms
                if not lo_ms <= t < hi_ms:
                    continue
                if after is not None and (t, idx, ordinal) <= after:
                    continue
                txs = txs or self.transactions_of(state.payload)
                tx = txs[ordinal]
                human = bool(tx["user"]) and tx["status_detail"] != "$assigned"
                if wanted(tx["type"] == "update", human, tx["task"]):
                    overlay_items.append((t, idx, ordinal))
        overlay_items.sort()

        result: list[tuple[int, int, int]] = []
        pos = bisect_left(self._feed_keys, start_key) if hi_ms > lo_ms else len(self._feed_keys)
        oi = 0
        skeletons: dict[int, Skeleton] = {}
        while len(result) <= limit:
            base_item: tuple[int, int, int] | None = None
            while pos < len(self._feed_keys):
                t, idx, ordinal = self._unpack_key(self._feed_keys[pos])
                if t >= hi_ms:
                    pos = len(self._feed_keys)
                    break
                pos += 1
                if idx in self.overlay:
                    continue
                skel = skeletons.get(idx) or skeletons.setdefault(idx, self.skeleton(idx))
                tx_skel = skel.transactions[ordinal]
                if wanted(kind_is_update(tx_skel.kind), kind_is_human(tx_skel.kind),
                          TASKS[tx_skel.task]):
                    base_item = (t, idx, ordinal)
                    break
            if base_item is None and oi >= len(overlay_items):
                break
            overlay_done = oi >= len(overlay_items)
            if base_item is not None and (overlay_done or base_item < overlay_items[oi]):
                result.append(base_item)
            else:
                if base_item is not None:
                    pos -= 1  # not consumed yet
                result.append(overlay_items[oi])
                oi += 1
        more = len(result) > limit
        return [self._feed_entry(*item) for item in result[:limit]], more

    def _feed_entry(self, time_ms: int, idx: int, ordinal: int) -> FeedEntry:
        cid = self.contact_id(idx)
        state = self.overlay.get(idx)
        if state is not None:
            tstate = state.transactions[ordinal]
            fired, rev = tstate.fired_ms, tstate.rev
        else:
            fired, rev = time_ms, 0
        md5 = self.transaction_md5(cid, ordinal, rev)
        position = ""
        if self.legacy_feed_entries:
            payload = state.payload if state is not None else self.contact(idx)
            n = 0
            for log_index, entry in enumerate(payload["$task_log"]):
                for tx_index, _ in enumerate(entry["transactions"]):
                    if n == ordinal:
                        position = f"{log_index},{tx_index}"
                    n += 1
        return FeedEntry(time_ms, idx, ordinal, iso_ms(fired), md5, cid, position)

    # ------------------------------------------------------------------ listing
    def _listing_order(self) -> array:
        if self._listing is None or self._listing[0] != self.version:
            order = array("i", sorted(range(self.total_contacts), key=self._listing_key))
            self._listing = (self.version, order)
        return self._listing[1]

    def _listing_key(self, idx: int) -> tuple[int, str]:
        return (self.contact_changed_ms(idx) // DAY_MS, self.contact_md5(idx))

    def list_contacts(
        self, since_day: int | None, after: tuple[int, str] | None, limit: int
    ) -> tuple[list[tuple[str, str]], tuple[int, str] | None]:
        """A page of (id, md5) in (changed day, md5) order; the position of the last item when
        more follow."""
        order = self._listing_order()
        start = 0
        if since_day is not None:
            start = bisect_left(order, (since_day, ""), key=self._listing_key)
        if after is not None:
            start = max(start, bisect_right(order, after, key=self._listing_key))
        page = order[start:start + limit]
        items = [(self.contact_id(idx), self.contact_md5(idx)) for idx in page]
        more = start + limit < len(order)
        return items, (self._listing_key(page[-1]) if more and len(page) else None)

    # ------------------------------------------------------------------ inbound calls
    def inbound_call(self, j: int) -> dict[str, Any]:
        if j >= self.seeded_inbound:
            return dict(self.extra_inbound[j - self.seeded_inbound])
        return self._seeded_inbound(j)

    def inbound_time_ms(self, j: int) -> int:
        if j >= self.seeded_inbound:
            return parse_timestamp_ms(self.extra_inbound[j - self.seeded_inbound]["call_time"])
        span = (HISTORY_DAYS - 30) * DAY_MS
        spacing = span // self.seeded_inbound
        start = self.initial_now_ms - span - DAY_MS
        jitter = random.Random((self.seed << 40) ^ (j << 1) ^ 1).randrange(max(spacing - 1, 1))
        return start + j * spacing + jitter

    def inbound_count(self) -> int:
        return self.seeded_inbound + len(self.extra_inbound)

    def inbound_range(self, from_ms: int | None, to_ms: int | None) -> tuple[int, int]:
        """Indexes [a, b) of inbound calls with call_time in [from, to)."""
        n = self.inbound_count()
        a = 0 if from_ms is None else bisect_left(range(n), from_ms, key=self.inbound_time_ms)
        b = n if to_ms is None else bisect_left(range(n), to_ms, key=self.inbound_time_ms)
        return a, max(a, b)

    def _seeded_inbound(self, j: int, call_ms: int | None = None) -> dict[str, Any]:
        rng = self._rng("inbound", j)
        call_ms = self.inbound_time_ms(j) if call_ms is None else call_ms
        state = rng.choice(["connected", "connected", "connected", "missed", "abandoned"])
        connected = state == "connected"
        connect_ms = call_ms + rng.randint(2_000, 40_000)
        hangup_ms = (connect_ms + rng.randint(30_000, 900_000)) if connected else (
            call_ms + rng.randint(5_000, 60_000)
        )
        task = rng.choice(TASKS[:4])
        # Seeded calls name seeded contacts only, so new contacts never rewrite old calls.
        population = self.seeded_contacts if j < self.seeded_inbound else self.total_contacts
        known = population > 0 and rng.random() < 0.7
        login = rng.choice(_USERS)[0]
        return {
            "id": hashed_id("inbound", self.seed, j),
            "line_id": hashed_id("line", self.seed, rng.randrange(3)),
            "campaign_id": self.campaign_id,
            "task_id": self.task_id(task),
            "task_name": task,
            "contact_id": self.contact_id(rng.randrange(population)) if known else "",
            "calling_number": f"+49{rng.randint(30, 99)}{rng.randint(100000, 9999999)}",
            "called_number": "+4930555000",
            "call_time": iso_ms(call_ms),
            "connect_time": iso_ms(connect_ms) if connected else "",
            "hangup_time": iso_ms(hangup_ms),
            "user": f"{login}@{_TENANT}" if connected else "",
            "state": state,
            "connectable_time": iso_ms(call_ms + 800),
            "disposition": {"connected": "answered", "missed": "no_agent",
                            "abandoned": "caller_hangup"}[state],
            "dispatch_error": state == "missed" and rng.random() < 0.5,
        }

    # ------------------------------------------------------------------ advance
    def advance(
        self,
        minutes: float = 5,
        new_transactions: int = 10,
        attach_call_data: int = 3,
        new_contacts: int = 2,
        new_inbound_calls: int = 2,
        new_field: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Jump the clock forward and make changes whose times lie inside the jumped interval."""
        with self.lock:
            if minutes <= 0:
                raise ValueError("minutes must be positive")
            before = self.now_ms()
            self._advanced_ms += int(minutes * _MINUTE)
            after = self.now_ms()
            self.advances += 1
            rng = self._rng("advance", self.advances)
            total_changes = new_transactions + attach_call_data + new_contacts + new_inbound_calls
            span = max(after - before - 2, 1)
            times = iter(sorted(before + 1 + rng.randrange(span) for _ in range(total_changes)))
            summary: dict[str, Any] = {
                "from": iso_ms(before), "to": iso_ms(after), "new_field": None,
                "attached_call_data": [], "new_transactions": [], "new_contacts": [],
                "new_inbound_calls": [],
            }
            if new_field:
                summary["new_field"] = self._add_field(new_field)
            order = [("attach", attach_call_data), ("tx", new_transactions),
                     ("contact", new_contacts), ("inbound", new_inbound_calls)]
            events = [kind for kind, n in order for _ in range(n)]
            rng.shuffle(events)
            for kind in events:
                at = next(times)
                if kind == "attach":
                    summary["attached_call_data"].append(self._attach_call_data(at, rng))
                elif kind == "tx" and self.total_contacts:
                    idx = rng.randrange(self.total_contacts)
                    summary["new_transactions"].append(self._new_transaction(idx, at, rng))
                elif kind == "contact":
                    summary["new_contacts"].append(self._new_contact(at, after, rng))
                elif kind == "inbound":
                    summary["new_inbound_calls"].append(self._new_inbound(at))
            summary["attached_call_data"] = [x for x in summary["attached_call_data"] if x]
            summary["now"] = iso_ms(self.now_ms())
            self.version += 1
            return summary

    def _add_field(self, spec: dict[str, Any]) -> str:
        name = str(spec["name"])
        if not any(f["name"] == name for f in self.fields):
            element = {"type": "field", "fieldType": spec.get("fieldType", "text"), "name": name,
                       "state": "visible", "deleted": False}
            self.fields.insert(len(self.fields) - 2, element)
            self.added_fields.append(name)
        return name

    def _new_transaction(self, idx: int, at: int, rng: random.Random) -> dict[str, Any]:
        state = self._materialise(idx)
        ordinal = len(state.transactions)
        in_progress = rng.random() < 0.3
        kind = HUMAN_CALL if in_progress else rng.choice(
            [HUMAN_CALL, HUMAN_CALL, AUTO_DIAL, HUMAN_EDIT, HUMAN_ASSIGNED, AUTO_ASSIGN]
        )
        skel = TxSkeleton(at, kind, rng.randrange(4), in_progress)
        tx = self._build_transaction(self.contact_id(idx), ordinal, skel, rng)
        self._append_transaction(state.payload, tx)
        state.transactions.append(TxState(at, at))
        if in_progress:
            state.in_progress.add(ordinal)
        self._touch(idx, state, at)
        return {"contact_id": self.contact_id(idx), "fired": tx["fired"], "task": tx["task"],
                "in_progress": in_progress}

    def _attach_call_data(self, at: int, rng: random.Random) -> dict[str, Any] | None:
        """Complete the oldest call still in progress; if none is left, add a recording late."""
        candidates: list[tuple[int, int, int]] = []
        for idx in self._pending_in_progress:
            if idx not in self.overlay:
                skel = self.skeleton(idx)
                candidates.append((skel.transactions[-1].fired_ms, idx, len(skel.transactions) - 1))
        for idx, state in self.overlay.items():
            for ordinal in state.in_progress:
                candidates.append((state.transactions[ordinal].fired_ms, idx, ordinal))
        candidates = [c for c in candidates if c[0] < at]
        if candidates:
            _, idx, ordinal = min(candidates)
            state = self._materialise(idx)
            state.in_progress.discard(ordinal)
            tx = self.transactions_of(state.payload)[ordinal]
            conn = tx["connections"][0]
            connect_ms = parse_timestamp_ms(conn["connected"])
            end = max(at - 1000, connect_ms + 1000)
            conn.update(
                disconnected=iso_ms(end), ended=iso_ms(end + 150),
                duration=(end - connect_ms) // 1000, call_disconnected=True,
                hangup_party="remote", result="connected",
            )
            if rng.random() < 0.7:
                conn["recordings"].append(self._recording(conn, connect_ms, end, rng))
            tx["status"], tx["status_detail"] = "success", "termin_vereinbart"
            tx["data"].update({"$status": "success", "$status_detail": "termin_vereinbart"})
            what = "completed_call"
        else:
            found = self._completed_call(rng)
            if found is None:
                return None
            idx, ordinal = found
            state = self._materialise(idx)
            tx = self.transactions_of(state.payload)[ordinal]
            conn = tx["connections"][0]
            start = parse_timestamp_ms(conn["connected"])
            stop = parse_timestamp_ms(conn["disconnected"])
            rec = self._recording(conn, start, stop, rng)
            rec["location"] = (
                f"https://recordings.dialfire.example/{self.campaign_id}/late-{self.advances}-"
                f"{conn['call_uuid']}.mp3"
            )
            conn["recordings"].append(rec)
            what = "late_recording"
        tx["version"] = hashed_id("txversion", self.contact_id(idx), ordinal, at)
        tstate = state.transactions[ordinal]
        tstate.rev += 1
        tstate.modified_ms = at
        if tx is self.transactions_of(state.payload)[-1]:
            self._refresh_task_keys(state.payload, tx)
        self._touch(idx, state, at, moves=self.call_data_moves_contact)
        return {"contact_id": self.contact_id(idx), "fired": tx["fired"], "what": what}

    def _completed_call(self, rng: random.Random) -> tuple[int, int] | None:
        for _ in range(200):
            if not self.total_contacts:
                return None
            idx = rng.randrange(self.total_contacts)
            txs = self.transactions_of(self.contact(idx))
            for ordinal, tx in enumerate(txs):
                conns = tx["connections"]
                if conns and conns[0]["connected"] and "disconnected" in conns[0]:
                    return idx, ordinal
        return None

    def _new_contact(self, at: int, until: int, rng: random.Random) -> str:
        idx = self.total_contacts
        self.total_contacts += 1
        cid = self.contact_id(idx)
        payload = self._contact_head(idx, cid, at, rng)
        payload.update(self._custom_values(idx, rng, added=self.added_fields))
        payload["$task_log"] = []
        fired = min(at + rng.randint(1000, 30_000), until - 1)
        txs = [TxSkeleton(fired, CREATE, _IMPORT_TASK)]
        for ordinal, skel in enumerate(txs):
            self._append_transaction(payload, self._build_transaction(cid, ordinal, skel, rng))
        self.overlay[idx] = ContactState(
            payload=payload,
            transactions=[TxState(t.fired_ms, t.fired_ms) for t in txs],
            rev=0,
            changed_ms=max(at, fired),
        )
        return cid

    def _new_inbound(self, at: int) -> str:
        j = self.inbound_count()
        call = self._seeded_inbound(j, call_ms=at)
        last = self.extra_inbound[-1]["call_time"] if self.extra_inbound else ""
        if call["call_time"] < last:  # keep the list ordered by call_time
            call["call_time"] = last
        self.extra_inbound.append(call)
        return str(call["id"])

    # ------------------------------------------------------------------ helpers for the oracle
    def iter_contacts(self) -> Iterator[tuple[int, dict[str, Any]]]:
        for idx in range(self.total_contacts):
            yield idx, self.contact(idx)

    def declared_fields(self) -> list[dict[str, Any]]:
        return [f for f in self.fields if f.get("type") == "field" and not f.get("deleted")]


def _uuid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value
