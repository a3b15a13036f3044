//! Identifiers: UUIDv7 in their hyphenated lower-case form, written without the
//! formatting machinery (ids are made several times per decision).

/// A new UUIDv7, hyphenated and lower-case.
pub(crate) fn new_id() -> String {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    uuid::Uuid::now_v7()
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
}
