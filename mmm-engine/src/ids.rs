//! Identifiers: UUIDv7 in their hyphenated lower-case form, written without the
//! formatting machinery (ids are made several times per decision).

use uuid::timestamp::context::{ContextV7, ThreadLocalContext};
use uuid::{Timestamp, Uuid};

thread_local! {
    /// This thread's UUIDv7 counter. `Uuid::now_v7` shares one context behind a global
    /// mutex, which every deciding thread would take several times per decision; one per
    /// thread keeps each thread's ids monotonic, and ids stay unique across threads by
    /// their random bits (a context reseeds its 42-bit counter with random bits each
    /// millisecond, and the remaining 32 bits are random), as they are across processes.
    static CONTEXT: ContextV7 = const { ContextV7::new() };
}

/// A new UUIDv7, hyphenated and lower-case.
pub(crate) fn new_id() -> String {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    Uuid::new_v7(Timestamp::now(ThreadLocalContext::new(&CONTEXT)))
        .hyphenated()
        .encode_lower(&mut buf)
        .to_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_uuid_v7() {
        let id = super::new_id();
        assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 7);
        assert_eq!(id, id.to_lowercase());
    }

    #[test]
    fn ids_of_one_thread_increase_and_threads_never_collide() {
        let batch = || (0..2_000).map(|_| super::new_id()).collect::<Vec<_>>();
        let mine = batch();
        // Hyphenated lower-case UUIDv7s sort as they were made.
        assert!(mine.windows(2).all(|w| w[0] < w[1]));
        let theirs = std::thread::spawn(batch).join().unwrap();
        let all: std::collections::HashSet<_> = mine.iter().chain(&theirs).collect();
        assert_eq!(all.len(), 4_000);
    }
}
