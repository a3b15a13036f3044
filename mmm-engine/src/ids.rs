//! Identifiers and shared text in decisions: UUIDv7 in their hyphenated lower-case form
//! and hex digests, written without the formatting machinery into fixed buffers (ids are
//! made several times per decision, and a copy of one is a copy of its bytes, not an
//! allocation); and [`SharedStr`], text a decision shares with the compiled playbook.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use smol_str::SmolStr;
use uuid::timestamp::context::{ContextV7, ThreadLocalContext};
use uuid::{Timestamp, Uuid};

/// An ASCII string of exactly `N` bytes, held inline. It reads, compares, hashes and
/// serialises as the string it holds.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct InlineStr<const N: usize>([u8; N]);

/// A UUIDv7, hyphenated and lower-case (`action_id`, `decision_id`).
pub type Id = InlineStr<36>;

/// A hex SHA-256 (an action's `fingerprint`).
pub type Hex256 = InlineStr<64>;

impl<const N: usize> InlineStr<N> {
    /// The bytes as text, when they are `N` ASCII bytes.
    pub fn new(bytes: [u8; N]) -> Option<Self> {
        bytes.is_ascii().then_some(InlineStr(bytes))
    }

    /// Text the crate made itself from ASCII bytes (hex digits, a UUID's form).
    pub(crate) fn from_ascii(bytes: [u8; N]) -> Self {
        debug_assert!(bytes.is_ascii());
        InlineStr(bytes)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored (`new` and `Deserialize` check it).
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl<const N: usize> Deref for InlineStr<N> {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl<const N: usize> AsRef<str> for InlineStr<N> {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl<const N: usize> Borrow<str> for InlineStr<N> {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

// Hashes as the `str` it holds, so that maps keyed by it can be looked up by `&str`.
impl<const N: usize> Hash for InlineStr<N> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl<const N: usize> PartialEq<str> for InlineStr<N> {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl<const N: usize> PartialEq<&str> for InlineStr<N> {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl<const N: usize> PartialEq<String> for InlineStr<N> {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl<const N: usize> PartialEq<InlineStr<N>> for String {
    fn eq(&self, other: &InlineStr<N>) -> bool {
        self == other.as_str()
    }
}

impl<const N: usize> PartialEq<InlineStr<N>> for &str {
    fn eq(&self, other: &InlineStr<N>) -> bool {
        *self == other.as_str()
    }
}

impl<const N: usize> fmt::Display for InlineStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<const N: usize> fmt::Debug for InlineStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<const N: usize> From<InlineStr<N>> for String {
    fn from(s: InlineStr<N>) -> String {
        s.as_str().to_owned()
    }
}

impl<const N: usize> Serialize for InlineStr<N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de, const N: usize> Deserialize<'de> for InlineStr<N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
        <[u8; N]>::try_from(text.as_bytes())
            .ok()
            .and_then(InlineStr::new)
            .ok_or_else(|| serde::de::Error::custom(format!("expected {N} ASCII characters")))
    }
}

/// Text a decision shares with the compiled playbook: a playbook's id, category, trigger or
/// description appears in every decision that names it. Short text (up to 23 bytes: most
/// ids, categories and triggers) is held inline, so that putting it into a decision copies
/// its bytes; longer text is shared by reference count. Copying short text inline rather
/// than counting references matters on the hot path: a reference count lives in the
/// playbook's allocation, so each copy and each drop was an atomic write to a cache line
/// that the deciding thread had not touched yet (and that other threads write too).
/// It reads, compares, hashes and serialises as the string it holds.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SharedStr(SmolStr);

impl SharedStr {
    /// The text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl Deref for SharedStr {
    type Target = str;
    fn deref(&self) -> &str {
        self.0.as_str()
    }
}

impl AsRef<str> for SharedStr {
    fn as_ref(&self) -> &str {
        self.0.as_str()
    }
}

impl Borrow<str> for SharedStr {
    fn borrow(&self) -> &str {
        self.0.as_str()
    }
}

impl From<Arc<str>> for SharedStr {
    fn from(text: Arc<str>) -> Self {
        SharedStr(SmolStr::from(text))
    }
}

impl From<&Arc<str>> for SharedStr {
    fn from(text: &Arc<str>) -> Self {
        SharedStr::from(Arc::clone(text))
    }
}

impl From<&str> for SharedStr {
    fn from(text: &str) -> Self {
        SharedStr(SmolStr::new(text))
    }
}

impl From<String> for SharedStr {
    fn from(text: String) -> Self {
        SharedStr(SmolStr::from(text))
    }
}

impl From<SharedStr> for String {
    fn from(text: SharedStr) -> String {
        String::from(text.0.as_str())
    }
}

impl PartialEq<str> for SharedStr {
    fn eq(&self, other: &str) -> bool {
        self.0.as_str() == other
    }
}

impl PartialEq<&str> for SharedStr {
    fn eq(&self, other: &&str) -> bool {
        self.0.as_str() == *other
    }
}

impl PartialEq<String> for SharedStr {
    fn eq(&self, other: &String) -> bool {
        self.0.as_str() == other.as_str()
    }
}

impl PartialEq<SharedStr> for str {
    fn eq(&self, other: &SharedStr) -> bool {
        self == other.0.as_str()
    }
}

impl PartialEq<SharedStr> for &str {
    fn eq(&self, other: &SharedStr) -> bool {
        *self == other.0.as_str()
    }
}

impl PartialEq<SharedStr> for String {
    fn eq(&self, other: &SharedStr) -> bool {
        self.as_str() == other.0.as_str()
    }
}

impl fmt::Display for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl fmt::Debug for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0.as_str(), f)
    }
}

impl Serialize for SharedStr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

impl<'de> Deserialize<'de> for SharedStr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(SharedStr::from)
    }
}

/// Serde for shared slices (`Arc<[T]>`) as the plain array, for
/// `#[serde(with = "crate::ids::shared")]` (serde's own `rc` feature would rebuild every
/// crate that depends on serde for one field).
pub(crate) mod shared {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T, S>(value: &Arc<T>, s: S) -> Result<S::Ok, S::Error>
    where
        T: ?Sized + Serialize,
        S: Serializer,
    {
        (**value).serialize(s)
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<Arc<T>, D::Error>
    where
        T: ?Sized,
        Box<T>: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Box::<T>::deserialize(d).map(Arc::from)
    }
}

thread_local! {
    /// This thread's UUIDv7 counter. `Uuid::now_v7` shares one context behind a global
    /// mutex, which every deciding thread would take several times per decision; one per
    /// thread keeps each thread's ids monotonic, and ids stay unique across threads by
    /// their random bits (a context reseeds its 42-bit counter with random bits each
    /// millisecond, and the remaining 32 bits are random), as they are across processes.
    static CONTEXT: ContextV7 = const { ContextV7::new() };
}

/// The wall-clock instant ids are stamped with, read once per decision so that each of its
/// ids (the decision's, one per action) does not read the clock again. Ids stay unique and
/// increasing on one thread whatever the stamp: the thread's context orders ids stamped in
/// the same millisecond, or earlier than the last, by its counter.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdStamp {
    seconds: u64,
    nanos: u32,
}

impl IdStamp {
    /// Now, by the system clock (as `Uuid::now_v7` reads it).
    pub fn now() -> IdStamp {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        IdStamp {
            seconds: since.as_secs(),
            nanos: since.subsec_nanos(),
        }
    }
}

/// A new UUIDv7, hyphenated and lower-case.
pub(crate) fn new_id() -> Id {
    new_id_at(IdStamp::now())
}

/// A new UUIDv7 stamped with `stamp`, hyphenated and lower-case.
pub(crate) fn new_id_at(stamp: IdStamp) -> Id {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let context = ThreadLocalContext::new(&CONTEXT);
    Uuid::new_v7(Timestamp::from_unix(context, stamp.seconds, stamp.nanos))
        .hyphenated()
        .encode_lower(&mut buf);
    InlineStr::from_ascii(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_uuid_v7() {
        let id = new_id();
        assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 7);
        assert_eq!(id.as_str(), id.to_lowercase());
    }

    #[test]
    fn inline_strings_serialise_and_parse_as_strings() {
        let id = new_id();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<Id>(&json).unwrap(), id);
        assert!(serde_json::from_str::<Id>("\"short\"").is_err());
        assert_eq!(format!("{id:?}"), format!("{:?}", id.as_str()));
    }

    #[test]
    fn ids_with_one_stamp_increase_and_carry_its_time() {
        let stamp = IdStamp::now();
        let ids: Vec<Id> = (0..1_000).map(|_| new_id_at(stamp)).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        let uuid = uuid::Uuid::parse_str(&ids[0]).unwrap();
        assert_eq!(uuid.get_version_num(), 7);
        let (secs, _) = uuid.get_timestamp().unwrap().to_unix();
        assert!(
            secs.abs_diff(stamp.seconds) <= 1,
            "{secs} vs {}",
            stamp.seconds
        );
        // An id stamped earlier than the last still sorts after it.
        let earlier = IdStamp {
            seconds: stamp.seconds - 60,
            nanos: 0,
        };
        assert!(new_id_at(earlier) > ids[999]);
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
