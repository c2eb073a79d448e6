//! The organizer's check-in rules: set per event through the API (on
//! create, on update and on their own route), carried to running gates by
//! the cache feed, and applied there by the one decide; the event's end
//! time with its grace; event times that make sense; and request bodies
//! that refuse fields they do not know. On the embedded chain, on SQLite and
//! PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ed25519_dalek::SigningKey;
use reqwest::Method;
use serde_json::{Value, json};
use shared::credential::{DelegationRequest, DelegationScope};
use shared::wire::{CacheChange, CachedEvent, CachedTicket, EnrolResponse};
use shared::{Credential, Presence, PublicKeyBytes, TicketState};

on_both_backends!(
    every_rule_set_through_the_api_changes_a_running_gates_decision,
    rules_come_with_create_and_update_and_only_the_organizer_or_admin_sets_them,
    entries_after_the_end_and_its_grace_are_refused_and_exits_are_not,
    an_event_cannot_end_before_it_starts_nor_lie_in_the_past,
    unknown_fields_in_any_body_are_refused_naming_the_field,
    a_holder_approves_a_browser_key_and_the_rotating_code_made_with_it_opens_the_gate,
);

const ENDS: i64 = T0 + 7200;

/// An event made by `org` through the ticketing API, with two tiers and
/// gates 1 and 2 (entry) and 3 (exit); `extra` is merged into the body.
async fn create_event(server: &TestServer, org: &str, extra: Value) -> (u16, Value) {
    let mut body = json!({
        "name": "Harbour Lights", "venue": "Pier 4", "starts_at": T0, "ends_at": ENDS,
        "doors_open_secs_before": 3600, "capacity": 50,
        "tiers": [
            { "name": "general", "price_lamports": 0, "supply": 40 },
            { "name": "vip", "price_lamports": 0, "supply": 10 }
        ]
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let (status, view, _) = server
        .call(Method::POST, "/api/events", Some(org), Some(body))
        .await;
    if status == 201 {
        let event_id = view["event_id"].as_u64().unwrap();
        for (number, name, direction) in [
            (1, "north", "entry"),
            (2, "south", "entry"),
            (3, "out", "exit"),
        ] {
            let (status, _, _) = server
                .call(
                    Method::PUT,
                    &format!("/api/admin/events/{event_id}/gates"),
                    Some(ADMIN),
                    Some(json!({ "number": number, "name": name, "direction": direction })),
                )
                .await;
            assert_eq!(status, 204);
        }
    }
    (status, view)
}

/// Mints one ticket of `tier` to `holder`; answers its QR code.
async fn mint(
    server: &TestServer,
    org: &str,
    event_id: u64,
    holder: &SigningKey,
    tier: u8,
) -> String {
    let (status, minted, _) = server
        .call(
            Method::POST,
            "/api/tickets/mint",
            Some(org),
            Some(json!({ "event_id": event_id, "wallet": address(holder), "tier": tier })),
        )
        .await;
    assert_eq!(status, 201, "{minted}");
    minted["code"].as_str().unwrap().to_owned()
}

/// Enrols a gate box for gate `name` of `event_id`.
async fn enrol(server: &TestServer, event_id: u64, name: &str, seed: u8) -> Gate {
    let (status, token, _) = server
        .call(
            Method::POST,
            &format!("/api/admin/events/{event_id}/enrol-tokens"),
            Some(ADMIN),
            Some(json!({ "gate": name })),
        )
        .await;
    assert_eq!(status, 201, "{token}");
    let key = SigningKey::from_bytes(&[seed; 32]);
    let r = server
        .http
        .post(format!("{}/gate/v1/enrol", server.url))
        .json(&enrol_request(token["token"].as_str().unwrap(), &key))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let response: EnrolResponse = r.json().await.unwrap();
    Gate {
        server: server.url.clone(),
        http: server.http.clone(),
        key,
        response,
        clock: server.clock.clone(),
    }
}

/// What a gate box holds: its event as the feed last delivered it, the
/// tickets, and its cursor.
struct GateCache {
    event: CachedEvent,
    tickets: Vec<CachedTicket>,
    cursor: u64,
}

impl GateCache {
    async fn load(gate: &Gate) -> Self {
        let snapshot = gate.snapshot().await;
        GateCache {
            event: snapshot.events[0].clone(),
            tickets: snapshot.tickets,
            cursor: snapshot.cursor,
        }
    }

    /// Pulls the next delta; it must carry the changed event.
    async fn follow(&mut self, gate: &Gate) {
        let delta = gate.delta(self.cursor, 0).await;
        self.cursor = delta.to_cursor;
        let mut event_changed = false;
        for change in delta.changes {
            match change {
                CacheChange::Event(event) => {
                    self.event = event;
                    event_changed = true;
                }
                CacheChange::Ticket(ticket) => {
                    self.tickets.retain(|t| t.ticket_id != ticket.ticket_id);
                    self.tickets.push(ticket);
                }
                CacheChange::Presence(_) | CacheChange::Undone(_) => {}
            }
        }
        assert!(
            event_changed,
            "the rule change reached the gate in its delta"
        );
    }

    /// The outcome code the gate gives `code` at `now` with the rules it
    /// holds (built as the agent builds them), the holder `presence` and
    /// `known` saying whether its cache has the ticket.
    fn decide(&self, gate: &Gate, code: &str, presence: Presence, known: bool, now: i64) -> String {
        let info = &gate.response.gate;
        let policy = self
            .event
            .policy_for(info.number, info.direction, info.allowed_tiers.clone());
        let keys = |id: u64| {
            if id == self.event.event_id {
                self.event.issuer_keys.clone()
            } else {
                Vec::new()
            }
        };
        let lookup = |event_id: u64, ticket_id: u32| {
            self.tickets
                .iter()
                .find(|t| known && t.event_id == event_id && t.ticket_id == ticket_id)
                .map(|t| TicketState {
                    event_id: t.event_id,
                    ticket_id: t.ticket_id,
                    tier: t.tier,
                    owner: t.owner,
                    generation: t.generation,
                    status: t.status,
                    presence,
                    entries: u32::from(presence != Presence::NeverEntered),
                })
        };
        shared::evaluate(code, &keys, lookup, &policy, now)
            .decision
            .code()
            .to_owned()
    }
}

/// Sets rules as `token`, which must succeed.
async fn set_rules(server: &TestServer, token: &str, event_id: u64, rules: Value) {
    let (status, body) = put_rules(server, token, event_id, rules).await;
    assert_eq!(status, 200, "{body}");
}

async fn put_rules(server: &TestServer, token: &str, event_id: u64, rules: Value) -> (u16, Value) {
    let (status, body, _) = server
        .call(
            Method::PUT,
            &format!("/api/events/{event_id}/rules"),
            Some(token),
            Some(rules),
        )
        .await;
    (status, body)
}

async fn every_rule_set_through_the_api_changes_a_running_gates_decision(db: Db) {
    let server = start_on_chain(db, ChainMode::Embedded).await;
    let organizer = wallet(70);
    let holder = wallet(71);
    let org = server.login_as(&organizer, Some("organizer")).await;
    let (status, created) = create_event(&server, &org, json!({})).await;
    assert_eq!(status, 201, "{created}");
    let event_id = created["event_id"].as_u64().unwrap();
    let general = mint(&server, &org, event_id, &holder, 0).await;
    let north = enrol(&server, event_id, "north", 81).await;
    let mut cache = GateCache::load(&north).await;
    let now = T0 + 60;
    let fresh = Presence::NeverEntered;
    let left = Presence::Outside {
        since: now - 120,
        gate: 3,
    };

    // The defaults, as the gate first receives them.
    assert_eq!(cache.event.ends_at, ENDS);
    assert_eq!(cache.decide(&north, &general, fresh, true, now), "admitted");
    assert_eq!(
        cache.decide(&north, &general, left, true, now),
        "reentry_not_allowed"
    );
    assert_eq!(
        cache.decide(&north, &general, fresh, false, now),
        "unknown_ticket"
    );
    assert_eq!(
        cache.decide(&north, &general, fresh, true, ENDS + 100),
        "event_ended"
    );

    // Re-entry.
    let (status, rules) = put_rules(
        &server,
        &org,
        event_id,
        json!({ "reentry": { "allowed_after": { "min_outside_secs": 60 } } }),
    )
    .await;
    assert_eq!(status, 200, "{rules}");
    cache.follow(&north).await;
    assert_eq!(
        cache.decide(&north, &general, left, true, now),
        "readmitted"
    );
    let inside = Presence::Inside {
        since: now - 30,
        gate: 1,
    };
    assert_eq!(
        cache.decide(&north, &general, inside, true, now),
        "already_inside",
        "exit required: no re-entry without an exit scan"
    );
    // Re-entry at any time, no exit scan needed; and the turnstile undo.
    let (status, rules) = put_rules(
        &server,
        &org,
        event_id,
        json!({ "reentry": "allowed", "undo_window_secs": 8 }),
    )
    .await;
    assert_eq!(status, 200, "{rules}");
    assert_eq!(rules["reentry"], "allowed");
    assert_eq!(rules["undo_window_secs"], 8);
    cache.follow(&north).await;
    assert_eq!(cache.event.undo_window_secs, 8);
    assert_eq!(
        cache.decide(&north, &general, inside, true, now),
        "readmitted"
    );
    // The old spelling of "exit required" still reads.
    set_rules(
        &server,
        &org,
        event_id,
        json!({ "reentry": { "exit_required": { "min_outside_secs": 60 } } }),
    )
    .await;
    cache.follow(&north).await;
    assert_eq!(
        cache.decide(&north, &general, inside, true, now),
        "already_inside"
    );

    // Unknown but signed tickets.
    set_rules(
        &server,
        &org,
        event_id,
        json!({ "unknown_tickets": "admit_if_signed" }),
    )
    .await;
    cache.follow(&north).await;
    assert_eq!(
        cache.decide(&north, &general, fresh, false, now),
        "admitted_unknown_ticket"
    );

    // The holder's rotating proof and its window.
    set_rules(
        &server,
        &org,
        event_id,
        json!({ "holder_proof": { "required": { "window_secs": 30 } } }),
    )
    .await;
    cache.follow(&north).await;
    assert_eq!(
        cache.decide(&north, &general, fresh, true, now),
        "holder_proof_missing"
    );
    let live = Credential::decode(&general)
        .unwrap()
        .with_holder_proof(&holder, now as u32)
        .encode();
    assert_eq!(cache.decide(&north, &live, fresh, true, now), "admitted");
    assert_eq!(
        cache.decide(&north, &live, fresh, true, now + 31),
        "holder_proof_stale"
    );
    set_rules(
        &server,
        &org,
        event_id,
        json!({ "holder_proof": "not_required" }),
    )
    .await;
    cache.follow(&north).await;

    // Tier -> gates: general only through the south gate.
    set_rules(
        &server,
        &org,
        event_id,
        json!({ "tier_gates": [{ "tier": 0, "gates": [2] }] }),
    )
    .await;
    cache.follow(&north).await;
    assert_eq!(
        cache.decide(&north, &general, fresh, true, now),
        "tier_not_allowed"
    );
    let south = enrol(&server, event_id, "south", 82).await;
    let south_cache = GateCache::load(&south).await;
    assert_eq!(
        south_cache.decide(&south, &general, fresh, true, now),
        "admitted"
    );
    set_rules(&server, &org, event_id, json!({ "tier_gates": [] })).await;
    cache.follow(&north).await;

    // The end-time grace: doors of an API-made event close with it.
    set_rules(&server, &org, event_id, json!({ "end_grace_secs": 600 })).await;
    cache.follow(&north).await;
    assert_eq!(cache.event.doors.closes_at, ENDS + 600);
    assert_eq!(
        cache.decide(&north, &general, fresh, true, ENDS + 100),
        "admitted"
    );
    assert_eq!(
        cache.decide(&north, &general, fresh, true, ENDS + 600),
        "event_ended"
    );

    // The rules as the API reports them.
    let (status, view, _) = server
        .call(Method::GET, &format!("/api/events/{event_id}"), None, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        view["rules"],
        json!({
            "reentry": { "allowed_after": { "min_outside_secs": 60 } },
            "unknown_tickets": "admit_if_signed",
            "holder_proof": "not_required",
            "tier_gates": [],
            "end_grace_secs": 600,
            "undo_window_secs": 8
        })
    );
}

async fn rules_come_with_create_and_update_and_only_the_organizer_or_admin_sets_them(db: Db) {
    let server = start_on_chain(db, ChainMode::Embedded).await;
    let organizer = wallet(72);
    let rival = wallet(73);
    let fan = wallet(74);
    let org = server.login_as(&organizer, Some("organizer")).await;
    let other = server.login_as(&rival, Some("organizer")).await;
    let holder = server.login_as(&fan, None).await;

    let rules = json!({
        "reentry": { "allowed_after": { "min_outside_secs": 300 } },
        "unknown_tickets": "admit_if_signed",
        "holder_proof": { "required": { "window_secs": 20 } },
        "tier_gates": [{ "tier": 1, "gates": [1] }],
        "end_grace_secs": 900,
        "undo_window_secs": 5
    });
    let (status, created) = create_event(&server, &org, json!({ "rules": rules })).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["rules"], rules);
    let event_id = created["event_id"].as_u64().unwrap();
    let cached = server.state.store.event(event_id).await.unwrap().unwrap();
    assert_eq!(cached.end_grace_secs, 900);
    assert_eq!(cached.doors.closes_at, ENDS + 900);

    // Out of range, for a tier the event lacks, or misspelt: named.
    for (body, field) in [
        (json!({ "end_grace_secs": 86_401 }), "end_grace_secs"),
        (json!({ "undo_window_secs": 121 }), "undo_window_secs"),
        (
            json!({ "holder_proof": { "required": { "window_secs": 0 } } }),
            "holder_proof.required.window_secs",
        ),
        (
            json!({ "reentry": { "allowed_after": { "min_outside_secs": 100_000 } } }),
            "reentry.allowed_after.min_outside_secs",
        ),
        (
            json!({ "tier_gates": [{ "tier": 2, "gates": [1] }] }),
            "tier_gates[0].tier",
        ),
        (
            json!({ "tier_gates": [{ "tier": 0, "gates": [1] }, { "tier": 0, "gates": [2] }] }),
            "tier_gates[1].tier",
        ),
        (
            json!({ "tier_gates": [{ "tier": 0, "gates": [] }] }),
            "tier_gates[0].gates",
        ),
        (json!({ "reentry_allowed": true }), "reentry_allowed"),
        (
            json!({ "tier_gates": [{ "tier": 0, "gate": [1] }] }),
            "tier_gates[0].gate",
        ),
    ] {
        let (status, error) = put_rules(&server, &org, event_id, body.clone()).await;
        assert_eq!(
            (status, error["field"].as_str()),
            (422, Some(field)),
            "{body}: {error}"
        );
    }
    let (status, error) = create_event(
        &server,
        &org,
        json!({ "rules": { "end_grace_secs": 90_000 } }),
    )
    .await;
    assert_eq!(
        (status, error["field"].as_str()),
        (422, Some("rules.end_grace_secs"))
    );

    // Only the event's organizer, or the admin.
    let change = json!({ "end_grace_secs": 60 });
    let (status, error) = put_rules(&server, &other, event_id, change.clone()).await;
    assert_eq!((status, error["error"].as_str()), (403, Some("forbidden")));
    let (status, error) = put_rules(&server, &holder, event_id, change.clone()).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (403, Some("role_required"))
    );
    let (status, _) = put_rules(&server, "not-a-token", event_id, change.clone()).await;
    assert_eq!(status, 401);
    let (status, _) = put_rules(&server, ADMIN, 424_242, change.clone()).await;
    assert_eq!(status, 404);
    let (status, now) = put_rules(&server, ADMIN, event_id, change).await;
    assert_eq!((status, now["end_grace_secs"].as_u64()), (200, Some(60)));
    // What was not given stays.
    assert_eq!(now["unknown_tickets"], "admit_if_signed");

    // And on update, with the other fields.
    let (status, updated, _) = server
        .call(
            Method::PUT,
            &format!("/api/events/{event_id}"),
            Some(&org),
            Some(json!({ "ends_at": ENDS + 3600, "rules": { "reentry": "forbidden" } })),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["rules"]["reentry"], "forbidden");
    assert_eq!(updated["rules"]["end_grace_secs"], 60);
    let cached = server.state.store.event(event_id).await.unwrap().unwrap();
    assert_eq!(cached.ends_at, ENDS + 3600);
    assert_eq!(cached.doors.closes_at, ENDS + 3600 + 60);

    // Events made with the admin token take rules too.
    let (status, made, _) = server
        .call(
            Method::POST,
            "/api/admin/events",
            Some(ADMIN),
            Some(json!({
                "event_id": 9001, "name": "Dock Party", "venue": "Dock",
                "starts_at": T0, "ends_at": ENDS, "doors_open_at": T0 - 600, "doors_close_at": ENDS,
                "capacity": 10, "tiers": [{ "name": "general", "price_lamports": 0, "supply": 10 }],
                "reentry": "forbidden", "transferable": true,
                "unknown_tickets": "admit_if_signed", "end_grace_secs": 120,
                "holder_proof": { "required": { "window_secs": 15 } }
            })),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["event"]["unknown_tickets"], "admit_if_signed");
    assert_eq!(made["event"]["end_grace_secs"], 120);
    assert_eq!(made["event"]["ends_at"], ENDS);
    let (status, error, _) = server
        .call(
            Method::POST,
            "/api/admin/events",
            Some(ADMIN),
            Some(json!({
                "event_id": 9002, "name": "Dock Party", "venue": "Dock",
                "starts_at": T0, "ends_at": ENDS, "doors_open_at": T0 - 600, "doors_close_at": ENDS,
                "capacity": 10, "tiers": [{ "name": "general", "price_lamports": 0, "supply": 10 }],
                "reentry": "forbidden", "transferable": true,
                "tier_gates": [{ "tier": 3, "gates": [1] }]
            })),
        )
        .await;
    assert_eq!(
        (status, error["field"].as_str()),
        (422, Some("tier_gates[0].tier")),
        "{error}"
    );
}

async fn entries_after_the_end_and_its_grace_are_refused_and_exits_are_not(db: Db) {
    let server = start_on_chain(db, ChainMode::Embedded).await;
    let organizer = wallet(75);
    let holder = wallet(76);
    let org = server.login_as(&organizer, Some("organizer")).await;
    let (_, created) =
        create_event(&server, &org, json!({ "rules": { "end_grace_secs": 300 } })).await;
    let event_id = created["event_id"].as_u64().unwrap();
    let code = mint(&server, &org, event_id, &holder, 0).await;
    let check = |gate: u32| json!({ "event_id": event_id, "gate": gate, "code": code });
    let validate = |body: Value| server.call(Method::POST, "/api/validate", Some(&org), Some(body));

    // Inside the grace: in.
    server
        .clock
        .0
        .store(ENDS + 299, std::sync::atomic::Ordering::SeqCst);
    let (status, first, _) = validate(check(1)).await;
    assert_eq!(
        (status, first["outcome"].as_str()),
        (200, Some("admitted")),
        "{first}"
    );
    // Leaving after the end is always recorded.
    server
        .clock
        .0
        .store(ENDS + 400, std::sync::atomic::Ordering::SeqCst);
    let (_, out, _) = validate(check(3)).await;
    assert_eq!(out["outcome"], "exit_recorded", "{out}");
    assert_eq!(out["opens"], true);
    // Coming back once the grace ran out: refused with its own code.
    let (_, again, _) = validate(check(2)).await;
    assert_eq!(
        (again["outcome"].as_str(), again["opens"].as_bool()),
        (Some("event_ended"), Some(false)),
        "{again}"
    );
    assert!(again["text"].as_str().unwrap().contains("over"), "{again}");
}

async fn an_event_cannot_end_before_it_starts_nor_lie_in_the_past(db: Db) {
    let server = start_on_chain(db, ChainMode::Embedded).await;
    let organizer = wallet(77);
    let org = server.login_as(&organizer, Some("organizer")).await;

    // Creating through the wallet API.
    for (times, field) in [
        (json!({ "starts_at": T0, "ends_at": T0 }), "ends_at"),
        (
            json!({ "starts_at": T0 - 7200, "ends_at": T0 - 3600 }),
            "ends_at",
        ),
        (json!({ "starts_at": T0 - 7200, "ends_at": T0 }), "ends_at"),
    ] {
        let (status, error) = create_event(&server, &org, times.clone()).await;
        assert_eq!(
            (status, error["field"].as_str()),
            (422, Some(field)),
            "{times}: {error}"
        );
    }
    // Started already but not over: fine.
    let (status, created) = create_event(
        &server,
        &org,
        json!({ "starts_at": T0 - 3600, "ends_at": T0 + 60 }),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let event_id = created["event_id"].as_u64().unwrap();

    // Changing it.
    for (change, field) in [
        (json!({ "ends_at": T0 - 10 }), "ends_at"),
        (json!({ "starts_at": T0 + 120 }), "starts_at"),
        (json!({ "starts_at": T0, "ends_at": T0 - 1 }), "ends_at"),
    ] {
        let (status, error, _) = server
            .call(
                Method::PUT,
                &format!("/api/events/{event_id}"),
                Some(&org),
                Some(change.clone()),
            )
            .await;
        assert_eq!(
            (status, error["field"].as_str()),
            (422, Some(field)),
            "{change}: {error}"
        );
    }
    let cached = server.state.store.event(event_id).await.unwrap().unwrap();
    assert_eq!(cached.ends_at, T0 + 60, "a refused change changes nothing");

    // Creating with the admin token.
    let admin_event = |id: u64, fields: Value| {
        let mut body = json!({
            "event_id": id, "name": "Dock Party", "venue": "Dock",
            "starts_at": T0, "ends_at": ENDS, "doors_open_at": T0 - 600, "doors_close_at": ENDS,
            "capacity": 10, "tiers": [{ "name": "general", "price_lamports": 0, "supply": 10 }],
            "reentry": "forbidden", "transferable": true
        });
        for (k, v) in fields.as_object().unwrap() {
            body[k] = v.clone();
        }
        server.call(Method::POST, "/api/admin/events", Some(ADMIN), Some(body))
    };
    for (fields, field) in [
        (
            json!({ "starts_at": T0 - 9000, "ends_at": T0 - 8000 }),
            "ends_at",
        ),
        (json!({ "ends_at": T0 - 1 }), "ends_at"),
        (json!({ "doors_close_at": T0 - 600 }), "doors_close_at"),
    ] {
        let (status, error, _) = admin_event(9100, fields.clone()).await;
        assert_eq!(
            (status, error["field"].as_str()),
            (422, Some(field)),
            "{fields}: {error}"
        );
    }
    assert!(server.state.store.event(9100).await.unwrap().is_none());
    let (status, made, _) = admin_event(9100, json!({})).await;
    assert_eq!(status, 201, "{made}");
}

async fn unknown_fields_in_any_body_are_refused_naming_the_field(db: Db) {
    let server = start_on_chain(db, ChainMode::Embedded).await;
    let organizer = wallet(78);
    let token = server.login_as(&organizer, Some("organizer")).await;
    let org = token.as_str();
    let (_, created) = create_event(&server, org, json!({})).await;
    let event_id = created["event_id"].as_u64().unwrap();
    let code = mint(&server, org, event_id, &wallet(79), 0).await;

    let scan = json!({
        "scan_id": uuid::Uuid::now_v7(), "gate": 1, "direction": "entry",
        "scanned_at_ms": T0 * 1000, "source": "handheld:1", "outcome": "admitted",
        "opened": true, "code": code, "flavour": "vanilla"
    });
    let cases: Vec<(Method, String, &str, Value, &str)> = vec![
        (
            Method::POST,
            "/api/events".into(),
            org,
            json!({ "name": "x", "colour": 1 }),
            "colour",
        ),
        (
            Method::PUT,
            format!("/api/events/{event_id}"),
            org,
            json!({ "venu": "Quay" }),
            "venu",
        ),
        (
            Method::PUT,
            format!("/api/events/{event_id}"),
            org,
            json!({ "rules": { "grace": 5 } }),
            "rules.grace",
        ),
        (
            Method::POST,
            "/api/validate".into(),
            org,
            json!({ "event_id": event_id, "gate": 1, "code": code, "force": true }),
            "force",
        ),
        (
            Method::POST,
            "/api/validate/sync".into(),
            org,
            json!({ "event_id": event_id, "gate": 1, "scans": [scan] }),
            "scans[0].flavour",
        ),
        (
            Method::POST,
            "/api/tickets/mint".into(),
            org,
            json!({ "event_id": event_id, "wallet": address(&wallet(79)), "tierr": 1 }),
            "tierr",
        ),
    ];
    for (method, path, token, body, field) in cases {
        let (status, error, _) = server.call(method, &path, Some(token), Some(body)).await;
        assert_eq!(
            (status, error["error"].as_str(), error["field"].as_str()),
            (422, Some("invalid_field"), Some(field)),
            "{path}: {error}"
        );
    }

    // The admin bodies name the field in the message.
    for (method, path, body, field) in [
        (
            Method::PUT,
            format!("/api/admin/events/{event_id}/gates"),
            json!({ "number": 4, "name": "west", "direction": "entry", "tiers": [0] }),
            "tiers",
        ),
        (
            Method::POST,
            "/api/admin/events".to_owned(),
            json!({
                "event_id": 9200, "name": "Dock Party", "venue": "Dock", "starts_at": T0,
                "ends_at": ENDS, "doors_open_at": T0 - 600, "doors_close_at": ENDS,
                "capacity": 10, "tiers": [{ "name": "general", "price_lamports": 0, "supply": 10 }],
                "reentry": "forbidden", "transferable": true, "grace_secs": 5
            }),
            "grace_secs",
        ),
    ] {
        let (status, error, _) = server.call(method, &path, Some(ADMIN), Some(body)).await;
        assert_eq!(status, 422, "{path}: {error}");
        assert!(
            error["message"].as_str().unwrap().contains(field),
            "{path}: {error}"
        );
    }

    // A gate's messages: strict in the versions this server speaks, lenient
    // towards a newer agent's additions.
    let token = {
        let (_, token, _) = server
            .call(
                Method::POST,
                &format!("/api/admin/events/{event_id}/enrol-tokens"),
                Some(ADMIN),
                Some(json!({ "gate": "north" })),
            )
            .await;
        token["token"].as_str().unwrap().to_owned()
    };
    let key = SigningKey::from_bytes(&[90; 32]);
    let mut request = serde_json::to_value(enrol_request(&token, &key)).unwrap();
    request["serial_number"] = json!("PI-4711");
    let r = server
        .http
        .post(format!("{}/gate/v1/enrol", server.url))
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let error: Value = r.json().await.unwrap();
    assert_eq!(error["field"], "serial_number", "{error}");
    let gate = enrol(&server, event_id, "north", 91).await;
    let mut batch = serde_json::to_value(shared::wire::JournalBatch {
        v: shared::wire::PROTOCOL_VERSION,
        device_id: gate.response.device_id,
        scans: vec![gate.scan(0, T0 * 1000)],
    })
    .unwrap();
    batch["scans"][0]["battery"] = json!(80);
    let r = gate
        .request(
            "POST",
            "/gate/v1/journal",
            serde_json::to_vec(&batch).unwrap(),
        )
        .await;
    assert_eq!(r.status(), 422);
    let error: Value = r.json().await.unwrap();
    assert_eq!(error["field"], "scans[0].battery", "{error}");
    assert_eq!(server.state.store.scan_count(event_id).await.unwrap(), 0);
    batch["v"] = json!(shared::wire::PROTOCOL_VERSION + 1);
    batch["scans"][0]["event_id"] = json!(event_id);
    let r = gate
        .request(
            "POST",
            "/gate/v1/journal",
            serde_json::to_vec(&batch).unwrap(),
        )
        .await;
    assert_eq!(r.status(), 200, "a newer agent's added field is let be");
    assert_eq!(server.state.store.scan_count(event_id).await.unwrap(), 1);
}

/// The holder-key endpoint gives the holder, and only the holder, the
/// static code and the exact text its wallet signs to approve a browser
/// key; the code a page makes from them (docs/holder-proof.md) passes the
/// gate's rules while fresh, and an approval by another wallet does not.
async fn a_holder_approves_a_browser_key_and_the_rotating_code_made_with_it_opens_the_gate(db: Db) {
    let server = start_on_chain(db, ChainMode::Embedded).await;
    let (organizer, holder, stranger) = (wallet(90), wallet(91), wallet(92));
    let org = server.login_as(&organizer, Some("organizer")).await;
    let fan = server.login_as(&holder, None).await;
    let other = server.login_as(&stranger, None).await;
    let (status, created) = create_event(&server, &org, json!({})).await;
    assert_eq!(status, 201, "{created}");
    let event_id = created["event_id"].as_u64().unwrap();
    set_rules(
        &server,
        &org,
        event_id,
        json!({ "holder_proof": { "required": { "window_secs": 20 } } }),
    )
    .await;
    let code = mint(&server, &org, event_id, &holder, 0).await;
    let body = Credential::decode(&code).unwrap().body;
    let north = enrol(&server, event_id, "north", 93).await;
    let cache = GateCache::load(&north).await;
    let session = SigningKey::from_bytes(&[94; 32]);
    let key = address(&session);
    let path = format!(
        "/api/tickets/{event_id}/{}/holder-key?key={key}",
        body.ticket_id
    );

    // Only the ticket's holder: not a stranger, not even the organizer.
    for token in [Some(other.as_str()), Some(org.as_str())] {
        let (status, refusal, _) = server.call(Method::GET, &path, token, None).await;
        assert_eq!(
            (status, refusal["error"].as_str()),
            (403, Some("forbidden")),
            "{refusal}"
        );
    }
    let (status, _, _) = server.call(Method::GET, &path, None, None).await;
    assert_eq!(status, 401);
    for (query, field) in [
        ("key=not-a-key".to_owned(), "key"),
        (format!("key={key}&scope=everything"), "scope"),
        (
            format!("key={key}&valid_from={T0}&valid_until={}", T0 - 1),
            "valid_until",
        ),
        (
            format!("key={key}&valid_from={T0}&valid_until={}", T0 + 40 * 86_400),
            "valid_until",
        ),
    ] {
        let (status, refusal, _) = server
            .call(
                Method::GET,
                &format!(
                    "/api/tickets/{event_id}/{}/holder-key?{query}",
                    body.ticket_id
                ),
                Some(&fan),
                None,
            )
            .await;
        assert_eq!(
            (status, refusal["field"].as_str()),
            (422, Some(field)),
            "{query}: {refusal}"
        );
    }

    // The holder gets the code, the approval's terms and its exact text.
    let (status, approval, _) = server.call(Method::GET, &path, Some(&fan), None).await;
    assert_eq!(status, 200, "{approval}");
    assert_eq!(approval["code"], code.as_str());
    assert_eq!(approval["owner"], address(&holder).as_str());
    assert_eq!(approval["generation"], body.generation);
    assert_eq!(approval["scope"], "ticket");
    assert_eq!(approval["session_key"], key.as_str());
    assert_eq!(
        approval["holder_proof"],
        json!({ "required": { "window_secs": 20 } })
    );
    assert_eq!(approval["server_time"], T0);
    let valid_from = approval["valid_from"].as_u64().unwrap() as u32;
    let valid_until = approval["valid_until"].as_u64().unwrap() as u32;
    assert_eq!(i64::from(valid_from), T0 - 300);
    assert!(i64::from(valid_until) >= ENDS, "{approval}");
    let request = DelegationRequest {
        scope: DelegationScope::Ticket,
        session_key: PublicKeyBytes::from(&session.verifying_key()),
        valid_from,
        valid_until,
    };
    assert_eq!(approval["message"], request.message(&body).as_str());

    // The page's code: the wallet's approval, then the key's fresh proof.
    let now = T0 + 60;
    let rotating = |approver: &SigningKey| {
        Credential::decode(&code)
            .unwrap()
            .with_session_proof(request.sign(approver, &body), &session, now as u32)
            .encode()
    };
    let fresh = Presence::NeverEntered;
    let live = rotating(&holder);
    assert_eq!(cache.decide(&north, &live, fresh, true, now), "admitted");
    assert_eq!(
        cache.decide(&north, &live, fresh, true, now + 21),
        "holder_proof_stale"
    );
    assert_eq!(
        cache.decide(&north, &code, fresh, true, now),
        "holder_proof_missing"
    );
    assert_eq!(
        cache.decide(&north, &rotating(&stranger), fresh, true, now),
        "bad_signature"
    );
}
