//! The registry: every version of every playbook, the live version per (tenant, id), and
//! the candidate index. A set is immutable once built; the engine swaps whole sets.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, LazyLock};

use crate::condition::{ConditionLimits, Sandbox};
use crate::error::{Diagnostic, LoadError};
use crate::experiment::ExperimentPlan;
use crate::ids::SharedStr;
use crate::kind_index::{Candidate, KindIndex};
use crate::model::Status;
use crate::plan::Plan;
use crate::playbook::{compile_sources, read_sources, LoadLimits, Source};

/// Conditions are compiled once, at load; compilation depends only on the parse limits,
/// which are fixed, so one shared compiler serves every set.
static COMPILER: LazyLock<Sandbox> = LazyLock::new(|| Sandbox::new(ConditionLimits::default()));

/// An immutable, validated set of playbooks with its candidate index.
#[derive(Debug, Default)]
pub struct PlaybookSet {
    versions: Vec<Arc<Plan>>,
    experiments: Vec<Arc<ExperimentPlan>>,
    live: Vec<Arc<Plan>>,
    global: KindIndex,
    tenants: HashMap<String, KindIndex>,
}

impl PlaybookSet {
    /// Loads every playbook file under the given files and directories, within the default
    /// [`LoadLimits`].
    ///
    /// # Errors
    /// A [`LoadError`] listing every problem found, each with file, line and column.
    pub fn from_paths(paths: &[impl AsRef<Path>]) -> Result<PlaybookSet, LoadError> {
        PlaybookSet::from_paths_with(paths, &LoadLimits::default())
    }

    /// Loads every playbook file under the given files and directories, within `limits`.
    ///
    /// # Errors
    /// As [`PlaybookSet::from_paths`].
    pub fn from_paths_with(
        paths: &[impl AsRef<Path>],
        limits: &LoadLimits,
    ) -> Result<PlaybookSet, LoadError> {
        let (sources, mut diagnostics) = read_sources(paths, limits);
        let set = PlaybookSet::from_sources_with(&sources, limits);
        match set {
            Ok(set) if diagnostics.is_empty() => Ok(set),
            Ok(_) => Err(LoadError { diagnostics }),
            Err(mut e) => {
                diagnostics.append(&mut e.diagnostics);
                Err(LoadError { diagnostics })
            }
        }
    }

    /// Loads the playbooks under one file or directory.
    ///
    /// # Errors
    /// As [`PlaybookSet::from_paths`].
    pub fn from_path(path: impl AsRef<Path>) -> Result<PlaybookSet, LoadError> {
        PlaybookSet::from_paths(&[path])
    }

    /// Loads playbooks from YAML text (one or more documents).
    ///
    /// # Errors
    /// As [`PlaybookSet::from_paths`]; the file is named `<yaml>`.
    ///
    /// ```
    /// let set = mmm_engine::PlaybookSet::from_yaml(r#"
    /// apiVersion: mmm/v1
    /// kind: Playbook
    /// metadata: {id: hello, version: 1, tenant: "*", status: published}
    /// spec:
    ///   triggers: [pr.opened]
    ///   actions: [{type: mirror, surfaces: [ide], title: Hi, text: "A pull request was opened."}]
    /// "#).unwrap();
    /// assert_eq!(set.len(), 1);
    /// ```
    pub fn from_yaml(text: &str) -> Result<PlaybookSet, LoadError> {
        PlaybookSet::from_sources(&[Source {
            name: "<yaml>".to_owned(),
            text: text.to_owned(),
        }])
    }

    /// Loads playbooks from named sources.
    ///
    /// # Errors
    /// As [`PlaybookSet::from_paths`].
    pub fn from_sources(sources: &[Source]) -> Result<PlaybookSet, LoadError> {
        PlaybookSet::from_sources_with(sources, &LoadLimits::default())
    }

    /// Loads playbooks from named sources, each within `limits`.
    ///
    /// # Errors
    /// As [`PlaybookSet::from_paths`].
    pub fn from_sources_with(
        sources: &[Source],
        limits: &LoadLimits,
    ) -> Result<PlaybookSet, LoadError> {
        let (plans, experiments, diagnostics) = compile_sources(sources, &COMPILER, false, limits);
        let errors: Vec<Diagnostic> = diagnostics
            .into_iter()
            .filter(Diagnostic::is_error)
            .collect();
        if !errors.is_empty() {
            return Err(LoadError {
                diagnostics: errors,
            });
        }
        PlaybookSet::from_parts(plans, experiments)
    }

    /// Builds a set from compiled plans: checks that no (tenant, id, version) appears twice,
    /// picks the live version of each playbook and indexes the candidates.
    ///
    /// # Errors
    /// A [`LoadError`] for each duplicate version, pointing at the second definition.
    pub fn from_plans(plans: Vec<Plan>) -> Result<PlaybookSet, LoadError> {
        PlaybookSet::from_parts(plans, Vec::new())
    }

    /// As [`PlaybookSet::from_plans`], with experiments: each must name a playbook of the
    /// set, and a playbook has at most one experiment per tenant scope.
    ///
    /// # Errors
    /// A [`LoadError`] for duplicates and dangling experiments.
    pub fn from_parts(
        plans: Vec<Plan>,
        experiments: Vec<ExperimentPlan>,
    ) -> Result<PlaybookSet, LoadError> {
        let mut seen: HashMap<(Option<String>, SharedStr, u32), usize> = HashMap::new();
        let mut errors = Vec::new();
        let mut versions = Vec::with_capacity(plans.len());
        for plan in plans {
            let key = (plan.tenant.clone(), plan.id.clone(), plan.version);
            if let Some(first) = seen.get(&key).and_then(|i| versions.get(*i)) {
                let first: &Arc<Plan> = first;
                let mut d = Diagnostic::error(
                    "duplicate-version",
                    format!(
                        "playbook `{}` version {} for tenant `{}` is already defined at {}:{}",
                        plan.id,
                        plan.version,
                        plan.tenant.as_deref().unwrap_or("*"),
                        first.source.file,
                        first.source.line
                    ),
                    &plan.source.file,
                );
                d.line = Some(plan.source.line);
                d.column = Some(plan.source.column);
                d.playbook = Some(plan.id.to_string());
                errors.push(d);
                continue;
            }
            seen.insert(key, versions.len());
            versions.push(Arc::new(plan));
        }
        let mut kept: Vec<Arc<ExperimentPlan>> = Vec::new();
        for e in experiments {
            let at = |rule: &str, message: String| {
                let mut d = Diagnostic::error(rule, message, &e.source.file);
                d.line = Some(e.source.line);
                d.column = Some(e.source.column);
                d.playbook = Some(e.id.clone());
                d
            };
            let exists = versions.iter().any(|p| {
                *p.id == *e.playbook
                    && (e.tenant.is_none() || p.tenant.is_none() || p.tenant == e.tenant)
            });
            if !exists {
                errors.push(at(
                    "unknown-playbook",
                    format!(
                        "experiment `{}` refers to playbook `{}`, which is not in this set",
                        e.id, e.playbook
                    ),
                ));
                continue;
            }
            // Experiment ids are unique in a set, whatever their tenant: status changes,
            // weights and audit events name an experiment by its id alone.
            if let Some(other) = kept.iter().find(|k| k.id == e.id) {
                errors.push(at(
                    "duplicate-experiment",
                    format!(
                        "experiment `{}` is already defined at {}:{}",
                        e.id, other.source.file, other.source.line
                    ),
                ));
                continue;
            }
            if let Some(other) = kept
                .iter()
                .find(|k| k.playbook == e.playbook && k.tenant == e.tenant)
            {
                errors.push(at(
                    "duplicate-experiment",
                    format!("playbook `{}` already has experiment `{}` for this tenant scope; run one at a time", e.playbook, other.id),
                ));
                continue;
            }
            kept.push(Arc::new(e));
        }
        if !errors.is_empty() {
            return Err(LoadError {
                diagnostics: errors,
            });
        }

        // The live version of each (tenant, id): the highest published one.
        let mut live_map: BTreeMap<(Option<String>, SharedStr), Arc<Plan>> = BTreeMap::new();
        for plan in versions.iter().filter(|p| p.status == Status::Published) {
            let key = (plan.tenant.clone(), plan.id.clone());
            let replace = live_map
                .get(&key)
                .is_none_or(|cur| cur.version < plan.version);
            if replace {
                live_map.insert(key, Arc::clone(plan));
            }
        }
        let live: Vec<Arc<Plan>> = live_map.into_values().collect();

        let global_live: Vec<Arc<Plan>> = live
            .iter()
            .filter(|p| p.tenant.is_none())
            .cloned()
            .collect();
        let global = KindIndex::build(&global_live);
        let mut per_tenant: HashMap<String, Vec<Arc<Plan>>> = HashMap::new();
        for plan in &live {
            if let Some(t) = &plan.tenant {
                per_tenant
                    .entry(t.clone())
                    .or_default()
                    .push(Arc::clone(plan));
            }
        }
        let tenants = per_tenant
            .into_iter()
            .map(|(tenant, own)| {
                // A tenant's own playbook replaces the all-tenants playbook of the same id.
                let mut merged: Vec<Arc<Plan>> = global_live
                    .iter()
                    .filter(|g| !own.iter().any(|o| o.id == g.id))
                    .cloned()
                    .collect();
                merged.extend(own);
                (tenant, KindIndex::build(&merged))
            })
            .collect();

        Ok(PlaybookSet {
            versions,
            experiments: kept,
            live,
            global,
            tenants,
        })
    }

    /// Number of playbook versions in the set (all statuses).
    pub fn len(&self) -> usize {
        self.versions.len()
    }

    /// Whether the set holds no playbooks.
    pub fn is_empty(&self) -> bool {
        self.versions.is_empty()
    }

    /// Every version, in load order.
    pub fn versions(&self) -> &[Arc<Plan>] {
        &self.versions
    }

    /// Every experiment.
    pub fn experiments(&self) -> &[Arc<ExperimentPlan>] {
        &self.experiments
    }

    /// The experiment on `playbook` for `tenant` (the tenant's own, else the all-tenants
    /// one), whatever its status.
    pub fn experiment_for(&self, tenant: &str, playbook: &str) -> Option<&Arc<ExperimentPlan>> {
        let own = self
            .experiments
            .iter()
            .find(|e| e.tenant.as_deref() == Some(tenant) && e.playbook == playbook);
        own.or_else(|| {
            self.experiments
                .iter()
                .find(|e| e.tenant.is_none() && e.playbook == playbook)
        })
    }

    /// The live version of each (tenant, id).
    pub fn live(&self) -> &[Arc<Plan>] {
        &self.live
    }

    /// The plan serving `id` for `tenant` (its own playbook, else the all-tenants one).
    pub fn live_for(&self, tenant: &str, id: &str) -> Option<&Arc<Plan>> {
        let own = self
            .live
            .iter()
            .find(|p| p.tenant.as_deref() == Some(tenant) && &*p.id == id);
        own.or_else(|| {
            self.live
                .iter()
                .find(|p| p.tenant.is_none() && &*p.id == id)
        })
    }

    pub(crate) fn candidates(&self, tenant: &str, kind: &str) -> std::borrow::Cow<'_, [Candidate]> {
        self.tenants
            .get(tenant)
            .unwrap_or(&self.global)
            .lookup(kind)
    }

    /// Ids and versions of the candidates for a tenant and kind, in evaluation order.
    pub fn candidate_refs(&self, tenant: &str, kind: &str) -> Vec<(String, u32)> {
        self.candidates(tenant, kind)
            .iter()
            .map(|c| (c.plan.id.to_string(), c.plan.version))
            .collect()
    }
}

/// Validates files for `mmm validate`: every error and lint warning, with positions.
pub fn check_paths(paths: &[impl AsRef<Path>]) -> Vec<Diagnostic> {
    let (sources, mut diagnostics) = read_sources(paths, &LoadLimits::default());
    diagnostics.extend(check_sources(&sources));
    diagnostics.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    diagnostics
}

/// Validates in-memory sources as [`check_paths`] validates files: every error and lint
/// warning, with positions, sorted by file, line and column. Hosts that keep playbooks
/// in a database use it to answer "would `mmm validate --strict` accept this?".
///
/// ```
/// use mmm_engine::playbook::Source;
/// let found = mmm_engine::check_sources(&[Source {
///     name: "hello.yaml".to_owned(),
///     text: "apiVersion: mmm/v1\nkind: Playbook\nmetadata: {id: hello, version: 1, tenant: \"*\", status: draft}\nspec:\n  triggers: [pr.opened]\n  actions: [{type: mirror, surfaces: [ide], title: Hi, text: \"You should split this.\"}]\n".to_owned(),
/// }]);
/// assert!(found.iter().all(|d| !d.is_error()));
/// assert!(found.iter().any(|d| d.rule == "prescriptive-wording"));
/// ```
pub fn check_sources(sources: &[Source]) -> Vec<Diagnostic> {
    let (plans, experiments, mut diagnostics) =
        compile_sources(sources, &COMPILER, true, &LoadLimits::default());
    if let Err(e) = PlaybookSet::from_parts(plans, experiments) {
        diagnostics.extend(e.diagnostics);
    }
    diagnostics.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    diagnostics
}
