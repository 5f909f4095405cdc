//! Attribute lists a boundary records the same way every time, built once per thread.
//!
//! A hop's span start attributes depend only on the path called, and the attributes of the
//! run an action opens only on its metadata: each call built the same list again, wrote it
//! into a record and freed it with the record (on a server, inside the delivery pass, when
//! a bounded sink lets the record go). Frozen ([`Attributes::freeze`]) and kept here, a
//! record carries a reference count instead. Per thread, not one per process: each clone
//! and drop writes the list's count, and a count every thread shared would move its cache
//! line between them on every call.

use std::cell::RefCell;

use crate::attributes::Attributes;

/// Lists remembered per thread, direct-mapped by their key: a deployment's hot paths
/// rarely share a slot, and one that does is built again (the same list).
const SLOTS: usize = 64;

/// What a list is built from, by address: `'static` data at one address never changes,
/// so equal keys mean equal lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Key {
    /// A hop's span: the path's and the boundary's addresses and lengths (0: none); both
    /// lengths, since two `'static` texts may start at one address (a literal that is
    /// another's prefix, merged by the linker).
    HopSpan {
        path: (usize, usize),
        boundary: (usize, usize),
    },
    /// The run an action opens: its metadata's address.
    Run { metadata: usize },
}

impl Key {
    fn slot(self) -> usize {
        let (a, b) = match self {
            Key::HopSpan { path, boundary } => (path.0, boundary.0),
            Key::Run { metadata } => (metadata, 1),
        };
        // The addresses' low bits are alignment: the slot from the bits above them.
        (a ^ b).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (usize::BITS - SLOTS.trailing_zeros())
    }
}

thread_local! {
    static LISTS: RefCell<[Option<(Key, Attributes)>; SLOTS]> =
        const { RefCell::new([const { None }; SLOTS]) };
}

/// The list `build` makes for `key`, frozen: this thread's copy when it has one.
pub(super) fn shared(key: Key, build: impl Fn() -> Attributes) -> Attributes {
    LISTS
        .try_with(|lists| {
            let mut lists = lists.borrow_mut();
            let slot = &mut lists[key.slot()];
            match slot {
                Some((at, attrs)) if *at == key => attrs.clone(),
                _ => {
                    let attrs = build().freeze();
                    *slot = Some((key, attrs.clone()));
                    attrs
                }
            }
        })
        // A thread being torn down: built for this call alone.
        .unwrap_or_else(|_| build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_gets_the_list_built_for_it_even_when_slots_collide() {
        let list = |i: usize| Attributes::new().with("n", i as i64);
        // Both kinds at the same addresses, many more keys than slots, asked in turn
        // three times: every answer is its own key's list.
        let keys: Vec<Key> = (0..4 * SLOTS)
            .flat_map(|i| {
                let at = 4096 + 64 * i;
                [
                    Key::Run { metadata: at },
                    Key::HopSpan {
                        path: (at, 3),
                        boundary: (0, 0),
                    },
                ]
            })
            .collect();
        for _ in 0..3 {
            for (i, key) in keys.iter().enumerate() {
                assert_eq!(shared(*key, || list(i)), list(i), "{key:?}");
            }
        }
        // A key asked again right away is not built again.
        let key = Key::Run { metadata: 8 };
        assert_eq!(shared(key, || list(1)), list(1));
        assert_eq!(shared(key, || panic!("built twice")), list(1));
    }
}
