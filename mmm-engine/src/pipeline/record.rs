//! The records that flow through the stages: one [`CandidateRecord`] per candidate
//! playbook (its plan and trigger, the condition's result, the experiment assignment and,
//! per action, how far it got), and one [`DecisionRecord`] per decision (the returned
//! actions, every suppression, the degraded codes and the redacted paths).

use crate::condition::QuickCondition;
use crate::ids::SharedStr;

use crate::decision::{
    Action, ConditionResult, Degraded, Detail, ExperimentRef, ExplainAction, ExplainEntry, Reason,
    Suppressed,
};
use crate::kind_index::Candidate;
use crate::model::SurfaceSet;
use crate::plan::Plan;
use crate::services::experiments::Assignment;

/// What a candidate's condition said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Not evaluated yet.
    Pending,
    /// True (or no condition).
    Held,
    /// False.
    NotHeld,
    /// The condition failed; the message explains how (`condition_error`).
    Failed(String),
}

/// How far one action of a candidate got.
#[derive(Debug)]
pub(crate) enum Fate {
    /// Passed the gates, for the surfaces in this set.
    Passed(SurfaceSet),
    /// Over the cap, waiting for the playbook's fatigue verdict to say why.
    OverCap,
    /// Composed, waiting for the fatigue verdict. The action is already at the end of the
    /// decision record's `actions` (the playbook's composed actions are the last ones
    /// there until its fatigue verdict keeps or drops them).
    Composed,
    /// Returned in the decision.
    Acted,
    /// Not returned, for this reason (the suppression is in the decision record).
    Suppressed(Reason),
}

/// One action of a candidate.
#[derive(Debug)]
pub(crate) struct ActionRecord {
    /// Its index in the playbook.
    pub index: usize,
    pub fate: Fate,
}

/// The action records of one candidate. Most playbooks have one action, and the actions of
/// a dozen candidates are recorded per decision, so one record is kept inline rather than
/// in a vector of its own.
#[derive(Debug, Default)]
pub(crate) enum ActionRecords {
    /// The condition did not hold (or has not been evaluated).
    #[default]
    None,
    One(ActionRecord),
    Many(Vec<ActionRecord>),
}

impl ActionRecords {
    pub fn as_slice(&self) -> &[ActionRecord] {
        match self {
            ActionRecords::None => &[],
            ActionRecords::One(a) => std::slice::from_ref(a),
            ActionRecords::Many(v) => v,
        }
    }

    pub fn as_mut_slice(&mut self) -> &mut [ActionRecord] {
        match self {
            ActionRecords::None => &mut [],
            ActionRecords::One(a) => std::slice::from_mut(a),
            ActionRecords::Many(v) => v,
        }
    }
}

impl FromIterator<ActionRecord> for ActionRecords {
    fn from_iter<I: IntoIterator<Item = ActionRecord>>(iter: I) -> Self {
        let mut iter = iter.into_iter();
        let Some(first) = iter.next() else {
            return ActionRecords::None;
        };
        match iter.next() {
            None => ActionRecords::One(first),
            Some(second) => {
                let mut all = vec![first, second];
                all.extend(iter);
                ActionRecords::Many(all)
            }
        }
    }
}

/// One candidate playbook on its way through the stages.
pub(crate) struct CandidateRecord<'s> {
    pub plan: &'s Plan,
    /// The trigger pattern that matched the signal's kind.
    pub trigger: &'s SharedStr,
    /// The condition's quick form, if it has one.
    pub quick: Option<&'s QuickCondition>,
    pub condition: Verdict,
    /// The experiment variant, when an active experiment applies and the condition held.
    pub experiment: Option<Assignment<'s>>,
    /// The actions that got past the condition (none when it did not hold).
    pub actions: ActionRecords,
}

impl<'s> CandidateRecord<'s> {
    pub fn new(candidate: &'s Candidate) -> Self {
        CandidateRecord {
            plan: &candidate.plan,
            trigger: &candidate.trigger,
            quick: candidate.quick.as_ref(),
            condition: Verdict::Pending,
            experiment: None,
            actions: ActionRecords::None,
        }
    }

    /// Whether some action passed the gates and waits for the cap and composition.
    pub fn has_passed(&self) -> bool {
        self.actions
            .as_slice()
            .iter()
            .any(|a| matches!(a.fate, Fate::Passed(_)))
    }
}

/// Everything one decision collects on its way.
#[derive(Debug, Default)]
pub(crate) struct DecisionRecord {
    /// Returned actions, in order (and, between the compose and fatigue stages of one
    /// playbook, its composed actions after them).
    pub actions: Vec<Action>,
    /// Every action not returned, in the order the stages judged them.
    pub suppressed: Vec<Suppressed>,
    /// Degraded modes, each once, in the order they occurred.
    pub degraded: Vec<Degraded>,
    /// Paths removed by data minimisation.
    pub redacted: Vec<String>,
}

impl DecisionRecord {
    /// Notes a degraded mode (once).
    pub fn degrade(&mut self, code: Degraded) {
        if !self.degraded.contains(&code) {
            self.degraded.push(code);
        }
    }

    /// Suppresses action `index` of `plan`: records the suppression and returns the fate
    /// the action's record takes.
    pub fn suppress(
        &mut self,
        plan: &Plan,
        index: usize,
        reason: Reason,
        detail: impl Into<Detail>,
    ) -> Fate {
        if let Some(action) = plan.actions.get(index) {
            self.suppressed.push(Suppressed {
                playbook: plan.reference(),
                action_index: index,
                kind: action.kind,
                reason,
                detail: detail.into(),
            });
        }
        Fate::Suppressed(reason)
    }
}

/// The explain trace: per candidate its id, version, trigger, the condition's result, the
/// experiment, and the outcome of each action (when the condition was not false).
pub(crate) fn explain(candidates: &[CandidateRecord<'_>]) -> Vec<ExplainEntry> {
    candidates
        .iter()
        .map(|c| ExplainEntry {
            playbook: c.plan.reference(),
            trigger: c.trigger.to_string(),
            condition: match &c.condition {
                Verdict::Held => ConditionResult::Value(true),
                Verdict::NotHeld | Verdict::Pending => ConditionResult::Value(false),
                Verdict::Failed(e) => ConditionResult::Error { error: e.clone() },
            },
            actions: {
                let mut outcomes: Vec<ExplainAction> = c
                    .actions
                    .as_slice()
                    .iter()
                    .filter_map(|a| {
                        let outcome = match &a.fate {
                            Fate::Acted => "acted".to_owned(),
                            Fate::Suppressed(reason) => format!("suppressed:{reason}"),
                            _ => return None,
                        };
                        Some(ExplainAction {
                            index: a.index,
                            kind: c.plan.actions.get(a.index)?.kind,
                            outcome,
                        })
                    })
                    .collect();
                outcomes.sort_by_key(|o| o.index);
                outcomes
            },
            experiment: c.experiment.map(|a| ExperimentRef {
                id: a.plan.id.clone(),
                variant: a.variant.name.clone(),
            }),
        })
        .collect()
}
