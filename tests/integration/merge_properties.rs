//! docs/DESIGN.md §6 as properties: random interleavings of two and three requests' changes (sets,
//! removes, clears, modify, regenerate, destroy) on one session, checked against a reference
//! model of what compare-and-set with replay must produce; on the memory store, SQLite and
//! a real Redis server.

#![cfg(all(feature = "memory", feature = "filesystem", feature = "sqlite"))]

use crate::common;

use std::collections::BTreeMap;

use proptest::prelude::*;
use rmpv::Value;
use sessionstore::codec::{self, Data};
use sessionstore::{PERMANENT_KEY, SaveOutcome};

#[derive(Debug, Clone)]
enum Op {
    Set(&'static str, i64),
    Remove(&'static str),
    Clear,
    Increment(&'static str),
    Regenerate,
    Destroy,
}

fn key() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["a", "b", "c"])
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (key(), 0..100i64).prop_map(|(k, v)| Op::Set(k, v)),
        2 => key().prop_map(Op::Remove),
        1 => Just(Op::Clear),
        4 => key().prop_map(Op::Increment),
        1 => Just(Op::Regenerate),
        1 => Just(Op::Destroy),
    ]
}

/// Each request's operations, and the order of the load and save events of all requests
/// (a request always loads before it saves).
fn scenario(requests: usize) -> impl Strategy<Value = (Vec<Vec<Op>>, Vec<(usize, bool)>)> {
    let ops = prop::collection::vec(prop::collection::vec(op(), 0..5), requests);
    let order = Just(
        (0..requests)
            .flat_map(|r| [(r, false), (r, true)])
            .collect::<Vec<_>>(),
    )
    .prop_shuffle()
    .prop_map(|events: Vec<(usize, bool)>| {
        // Turn each request's first event into its load and its second into its save.
        let mut seen = vec![false; events.len()];
        events
            .into_iter()
            .map(|(request, _)| {
                let is_save = seen[request];
                seen[request] = true;
                (request, is_save)
            })
            .collect()
    });
    (ops, order)
}

fn holds_data(data: &Data) -> bool {
    data.keys().any(|k| k != PERMANENT_KEY)
}

fn apply(op: &Op, data: &mut Data) {
    match op {
        Op::Set(k, v) => {
            data.insert((*k).into(), Value::from(*v));
        }
        Op::Remove(k) => {
            data.remove(*k);
        }
        Op::Clear => data.clear(),
        Op::Increment(k) => {
            let n = data.get(*k).and_then(Value::as_i64).unwrap_or(0);
            data.insert((*k).into(), Value::from(n + 1));
        }
        Op::Regenerate | Op::Destroy => {}
    }
}

fn replay(ops: &[Op], base: &Data) -> Data {
    let mut data = base.clone();
    for op in ops {
        apply(op, &mut data);
    }
    data
}

/// What docs/DESIGN.md §6 says the store holds after the requests: the session's record (`None` if it
/// ended) and the record each regenerating request created.
#[derive(Debug, Default)]
struct Model {
    record: Option<Data>,
    regenerated: BTreeMap<usize, Option<Data>>,
}

impl Model {
    fn run(initial: &Data, requests: &[Vec<Op>], order: &[(usize, bool)]) -> Model {
        let mut model = Model {
            record: Some(initial.clone()),
            ..Model::default()
        };
        let mut loaded: Vec<Option<Data>> = vec![None; requests.len()];
        for &(request, is_save) in order {
            let ops = &requests[request];
            if !is_save {
                loaded[request] = model.record.clone();
                continue;
            }
            let destroyed = ops.iter().any(|op| matches!(op, Op::Destroy));
            let regenerated = ops.iter().any(|op| matches!(op, Op::Regenerate));
            let changes: Vec<Op> = match ops.iter().rposition(|op| matches!(op, Op::Destroy)) {
                Some(_) => Vec::new(),
                None => ops
                    .iter()
                    .filter(|op| !matches!(op, Op::Regenerate))
                    .cloned()
                    .collect(),
            };
            let Some(snapshot) = &loaded[request] else {
                // Loaded a fresh session: whatever it stores goes under a new id.
                if !destroyed {
                    let mut fresh = Data::new();
                    fresh.insert(PERMANENT_KEY.into(), Value::Boolean(true));
                    let data = replay(&changes, &fresh);
                    if regenerated || holds_data(&data) {
                        model
                            .regenerated
                            .insert(request, holds_data(&data).then_some(data));
                    }
                }
                continue;
            };
            if destroyed {
                model.record = None;
            } else if regenerated {
                let base = model.record.clone();
                let data = match &base {
                    Some(current) => replay(&changes, current),
                    None => replay(&changes, snapshot),
                };
                model
                    .regenerated
                    .insert(request, holds_data(&data).then_some(data));
                model.record = None;
            } else if !changes.is_empty()
                && let Some(current) = &model.record
            {
                let data = replay(&changes, current);
                model.record = holds_data(&data).then_some(data);
            }
        }
        model
    }
}

fn run_real(
    backend: &str,
    requests: &[Vec<Op>],
    order: &[(usize, bool)],
) -> Result<(), TestCaseError> {
    let h = common::harness(backend, |b| b);
    let cookie = common::cookie_pair(&h.request(None, |s| {
        s.insert("a", 1).unwrap();
        s.insert("b", 2).unwrap();
    }));
    let initial = codec::decode(&h.stored(&cookie).unwrap().data).unwrap();
    let expected = Model::run(&initial, requests, order);

    let mut sessions: Vec<Option<sessionstore::Session>> =
        (0..requests.len()).map(|_| None).collect();
    let mut outcomes: BTreeMap<usize, SaveOutcome> = BTreeMap::new();
    for &(request, is_save) in order {
        if !is_save {
            let mut session = h.manager.load(Some(&cookie)).unwrap();
            for op in &requests[request] {
                match op {
                    Op::Set(k, v) => session.insert(k, v).unwrap(),
                    Op::Remove(k) => {
                        session.remove(k);
                    }
                    Op::Clear => session.clear(),
                    Op::Increment(k) => {
                        session
                            .modify(k, |n: Option<i64>| n.unwrap_or(0) + 1)
                            .unwrap();
                    }
                    Op::Regenerate => session.regenerate(),
                    Op::Destroy => session.destroy(),
                }
            }
            sessions[request] = Some(session);
        } else {
            let session = sessions[request].take().unwrap();
            outcomes.insert(request, h.manager.save(session).unwrap());
        }
    }
    let actual = h.stored(&cookie).map(|r| codec::decode(&r.data).unwrap());
    prop_assert_eq!(&actual, &expected.record, "the session's record");
    for (request, expected_new) in &expected.regenerated {
        let outcome = &outcomes[request];
        let actual_new = match &outcome.set_cookie {
            Some(_) if !common::is_removal(outcome) => {
                let new_cookie = common::cookie_pair(outcome);
                prop_assert_ne!(&h.key_of(&new_cookie), &h.key_of(&cookie));
                h.stored(&new_cookie)
                    .map(|r| codec::decode(&r.data).unwrap())
            }
            _ => None,
        };
        prop_assert_eq!(
            &actual_new,
            expected_new,
            "request {}'s new record",
            request
        );
    }
    Ok(())
}

fn check(backend: &str, requests: usize, cases: u32) {
    let config = ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |((ops, order) in scenario(requests))| {
        run_real(backend, &ops, &order)?;
    });
}

macro_rules! merge_suite {
    ($backend:ident) => {
        mod $backend {
            #[test]
            fn two_requests_interleaved() {
                super::check(stringify!($backend), 2, 300);
            }

            #[test]
            fn three_requests_interleaved() {
                super::check(stringify!($backend), 3, 300);
            }
        }
    };
}

merge_suite!(memory);
merge_suite!(sqlite);
#[cfg(feature = "redis")]
merge_suite!(redis);
