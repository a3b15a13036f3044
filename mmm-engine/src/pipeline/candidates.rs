//! The candidates stage: the live plans whose triggers match the signal's tenant and kind,
//! from the playbook set's index, already in evaluation order (priority descending, then
//! id), each becoming a [`CandidateRecord`].

use std::borrow::Cow;

use crate::kind_index::Candidate;
use crate::pipeline::record::CandidateRecord;
use crate::registry::PlaybookSet;
use crate::signal::Signal;

/// The candidates for `signal` in `set` (a shared slice for kinds some trigger names).
pub(crate) fn find<'s>(set: &'s PlaybookSet, signal: &Signal) -> Cow<'s, [Candidate]> {
    set.candidates(&signal.tenant_id, &signal.kind)
}

/// One record per candidate, in evaluation order.
pub(crate) fn records(found: &[Candidate]) -> Vec<CandidateRecord<'_>> {
    found.iter().map(CandidateRecord::new).collect()
}
