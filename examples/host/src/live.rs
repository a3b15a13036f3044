//! The engine's live playbook set. Playbooks live in the store; the set the engine decides
//! with is compiled from every published version there, with the store's status (not the
//! one written in the text), and swapped atomically (`Engine::reload_shared`). Replicas
//! follow changes through the store's notifications and a periodic revision check.
//!
//! Active experiments of every tenant join the set (the store's status counts, not the
//! text's); one that no longer fits the published playbooks is left out and logged.
//! Experiment changes bump the same revision, so replicas follow them as they follow
//! playbooks.
//!
//! Compiled versions are cached by their text's hash, so a publish recompiles one
//! version, not the library. Compiling runs on the blocking pool.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use mmm_engine::audit::{AuditEvent, AuditSink};
use mmm_engine::experiment::{ExperimentPlan, ExperimentStatus};
use mmm_engine::playbook::Source;
use mmm_engine::{check_sources, Diagnostic, Engine, Plan, PlaybookSet, Status};
use parking_lot::Mutex;
use serde_json::Value;
use sha2::Digest;
use tokio::sync::{watch, Notify};

use crate::error::AppError;
use crate::metrics::Metrics;
use crate::store::{
    ExperimentRecord, NewAudit, PlaybookMeta, PlaybookVersion, Scope, Store, GLOBAL,
};

/// The name diagnostics give a stored version: `acme/large-pr@3`.
pub fn source_name(tenant: &str, id: &str, version: u32) -> String {
    format!("{tenant}/{id}@{version}")
}

/// Hex SHA-256 of a text (audit records name a document's text by it).
pub fn text_sha256(text: &str) -> String {
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// Every finding `mmm validate --strict` would report for `yaml`: errors and lint
/// warnings, positions inside the text, the file named `name`.
pub fn strict_diagnostics(name: &str, yaml: &str) -> Vec<Diagnostic> {
    check_sources(&[Source {
        name: name.to_owned(),
        text: yaml.to_owned(),
    }])
}

/// Compiles a text that must hold exactly one playbook document.
///
/// # Errors
/// The load errors (warnings are not errors here), or one diagnostic saying the text
/// holds no playbook or more than one document.
pub fn compile_one(name: &str, yaml: &str) -> Result<Plan, Vec<Diagnostic>> {
    let set = PlaybookSet::from_sources(&[Source {
        name: name.to_owned(),
        text: yaml.to_owned(),
    }])
    .map_err(|e| e.diagnostics)?;
    let single = |message: &str| {
        vec![Diagnostic {
            severity: mmm_engine::Severity::Error,
            rule: "one-playbook".to_owned(),
            message: message.to_owned(),
            file: name.to_owned(),
            line: Some(1),
            column: Some(1),
            playbook: None,
        }]
    };
    if !set.experiments().is_empty() {
        return Err(single(
            "this holds an experiment; experiments are written through `/experiments`",
        ));
    }
    match set.versions() {
        [plan] => Ok(Plan::clone(plan)),
        [] => Err(single("the text holds no playbook document")),
        _ => Err(single(
            "the text holds more than one playbook document; send one version at a time",
        )),
    }
}

/// The experiment status the store keeps for active experiments.
pub const ACTIVE: &str = "active";

/// The source name of the stand-in playbook an experiment is compiled beside.
const STAND_IN: &str = "<stand-in>";

/// A global draft playbook of id `playbook`, so an experiment text compiles on its own:
/// the core checks only that the playbook it names is in the set. Which published
/// version it shapes is the live set's business.
fn stand_in(playbook: &str) -> Source {
    let id = serde_json::to_string(playbook).unwrap_or_else(|_| "\"x\"".to_owned());
    Source {
        name: STAND_IN.to_owned(),
        text: format!(
            "apiVersion: mmm/v1\nkind: Playbook\nmetadata: {{id: {id}, version: 1, tenant: \"*\", status: draft}}\nspec:\n  triggers: [stand.in]\n  actions: [{{type: mirror, surfaces: [ide], title: Stand-in, text: \"A stand-in fired.\"}}]\n"
        ),
    }
}

/// The sources an experiment text is checked with: itself, and a stand-in for the
/// playbook it names (when it names one).
fn experiment_sources(name: &str, yaml: &str) -> Vec<Source> {
    let mut sources = vec![Source {
        name: name.to_owned(),
        text: yaml.to_owned(),
    }];
    let playbook = yaml_to_json(yaml).ok().and_then(|v| {
        v.get("spec")
            .and_then(|s| s.get("playbook"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    if let Some(playbook) = playbook {
        sources.push(stand_in(&playbook));
    }
    sources
}

/// One diagnostic of rule `one-experiment` at the text's start.
fn not_one_experiment(name: &str, message: &str) -> Vec<Diagnostic> {
    vec![Diagnostic {
        severity: mmm_engine::Severity::Error,
        rule: "one-experiment".to_owned(),
        message: message.to_owned(),
        file: name.to_owned(),
        line: Some(1),
        column: Some(1),
        playbook: None,
    }]
}

/// Refuses a text that is not exactly one document (experiments are sent one at a time).
fn one_document(name: &str, yaml: &str) -> Result<(), Vec<Diagnostic>> {
    match split_documents(yaml).len() {
        1 => Ok(()),
        0 => Err(not_one_experiment(
            name,
            "the text holds no experiment document",
        )),
        _ => Err(not_one_experiment(
            name,
            "the text holds more than one document; send one experiment at a time",
        )),
    }
}

/// Every finding `mmm validate --strict` would report for an experiment text (the
/// playbook it names is assumed to exist; activation checks that it is live).
pub fn experiment_diagnostics(name: &str, yaml: &str) -> Vec<Diagnostic> {
    if let Err(d) = one_document(name, yaml) {
        return d;
    }
    check_sources(&experiment_sources(name, yaml))
        .into_iter()
        .filter(|d| d.file != STAND_IN)
        .collect()
}

/// Compiles a text that must hold exactly one experiment document.
///
/// # Errors
/// The load errors, or one diagnostic (`one-experiment`) saying the text holds no
/// experiment, a playbook, or more than one document.
pub fn compile_experiment(name: &str, yaml: &str) -> Result<ExperimentPlan, Vec<Diagnostic>> {
    one_document(name, yaml)?;
    let set = PlaybookSet::from_sources(&experiment_sources(name, yaml)).map_err(|e| {
        // The stand-in compiles for any playbook id the experiment accepts: what is left
        // is the experiment's own.
        e.diagnostics
            .into_iter()
            .filter(|d| d.file != STAND_IN)
            .collect::<Vec<_>>()
    })?;
    if set.versions().iter().any(|p| p.source.file != STAND_IN) {
        return Err(not_one_experiment(
            name,
            "this holds a playbook; playbooks are written through `/playbooks`",
        ));
    }
    match set.experiments() {
        [plan] => Ok(ExperimentPlan::clone(plan)),
        _ => Err(not_one_experiment(
            name,
            "the text holds no experiment document",
        )),
    }
}

/// Why an experiment cannot join a set of `plans` beside the experiments already
/// `kept`, or `None` when it can (the core's rules: its playbook is in the set for its
/// scope; ids are unique in a set; one experiment per playbook and tenant scope).
pub fn experiment_conflict(
    e: &ExperimentPlan,
    plans: &[&Plan],
    kept: &[&ExperimentPlan],
) -> Option<String> {
    let exists = plans.iter().any(|p| {
        *p.id == *e.playbook && (e.tenant.is_none() || p.tenant.is_none() || p.tenant == e.tenant)
    });
    if !exists {
        return Some(format!(
            "playbook `{}` has no published version for the experiment's tenant",
            e.playbook
        ));
    }
    if kept.iter().any(|k| k.id == e.id) {
        return Some(format!(
            "an active experiment `{}` exists already (experiment ids are unique among active experiments)",
            e.id
        ));
    }
    if let Some(other) = kept
        .iter()
        .find(|k| k.playbook == e.playbook && k.tenant == e.tenant)
    {
        return Some(format!(
            "playbook `{}` has the active experiment `{}` already; run one at a time",
            e.playbook, other.id
        ));
    }
    None
}

/// Splits a multi-document YAML text into its documents' texts, at `---` lines (a
/// directive end marker is only ever at the start of a line, also inside block scalars,
/// so the split is exact). Empty documents are dropped.
pub fn split_documents(text: &str) -> Vec<String> {
    let mut docs = Vec::new();
    let mut current = String::new();
    for line in text.split_inclusive('\n') {
        let marker = line
            .strip_prefix("---")
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']));
        if marker {
            docs.push(std::mem::take(&mut current));
            let rest = line.get(3..).unwrap_or("").trim_start_matches([' ', '\t']);
            if !rest.trim().is_empty() && !rest.trim_start().starts_with('#') {
                current.push_str(rest);
            }
        } else {
            current.push_str(line);
        }
    }
    docs.push(current);
    docs.into_iter()
        .filter(|d| {
            d.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        })
        .collect()
}

/// A YAML document as JSON (for `GET …/versions/{v}` with `Accept: application/json`).
///
/// # Errors
/// A message when the text is not YAML.
pub fn yaml_to_json(yaml: &str) -> Result<Value, String> {
    mmm_engine::playbook::read_yaml::<Value>(
        "document",
        yaml,
        &mmm_engine::playbook::LoadLimits::default(),
    )
    .map_err(|e| e.to_string())
}

/// An engine audit sink that logs: the engine's own events (the set replaced) happen on
/// every replica, and the host's audit log records the admin mutation that caused them.
#[derive(Debug, Default)]
pub struct LogAudit;

impl AuditSink for LogAudit {
    fn record(&self, event: &AuditEvent) -> Result<(), String> {
        tracing::info!(kind = %event.kind, subject = %event.subject, by = ?event.by, "engine event");
        Ok(())
    }
}

type CacheKey = (String, String, u32);

/// Compiled experiments by (tenant, id), with their text's hash.
type ExperimentCache = HashMap<(String, String), (String, Arc<ExperimentPlan>)>;

/// The engine and the store revision its set was built from.
pub struct Live {
    engine: Engine,
    metrics: Arc<Metrics>,
    loaded: AtomicI64,
    cache: Mutex<HashMap<CacheKey, (String, Arc<Plan>)>>,
    experiment_cache: Mutex<ExperimentCache>,
    reloading: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("loaded", &self.loaded)
            .finish_non_exhaustive()
    }
}

impl Live {
    /// Wraps an engine (built with the host's ports); not ready until [`Live::reload`].
    pub fn new(engine: Engine, metrics: Arc<Metrics>) -> Self {
        Live {
            engine,
            metrics,
            loaded: AtomicI64::new(-1),
            cache: Mutex::new(HashMap::new()),
            experiment_cache: Mutex::new(HashMap::new()),
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Whether a set from the store has been loaded.
    pub fn is_ready(&self) -> bool {
        self.loaded.load(Ordering::Acquire) >= 0
    }

    /// The store revision the live set was built from.
    pub fn revision(&self) -> Option<i64> {
        let r = self.loaded.load(Ordering::Acquire);
        (r >= 0).then_some(r)
    }

    /// Compiles versions into a set, each with the status given beside it (the store's).
    /// A version that does not compile, or whose text names another playbook than its
    /// record, is left out and logged: one bad row never keeps the host from serving.
    ///
    /// # Errors
    /// [`AppError::Internal`] when the blocking pool fails or the plans do not form a
    /// set.
    pub async fn compile_set(
        &self,
        versions: Vec<(PlaybookVersion, Status)>,
    ) -> Result<PlaybookSet, AppError> {
        let plans = self.compile_plans(versions).await?;
        PlaybookSet::from_plans(plans).map_err(|e| AppError::Internal(e.to_string()))
    }

    /// Compiles versions into plans, as [`Live::compile_set`].
    async fn compile_plans(
        &self,
        versions: Vec<(PlaybookVersion, Status)>,
    ) -> Result<Vec<Plan>, AppError> {
        let mut plans: Vec<Plan> = Vec::with_capacity(versions.len());
        let mut to_compile = Vec::new();
        {
            let cache = self.cache.lock();
            for (v, status) in versions {
                let key = (v.meta.tenant.clone(), v.meta.id.clone(), v.meta.version);
                let sha = text_sha256(&v.yaml);
                match cache.get(&key) {
                    Some((cached_sha, plan)) if *cached_sha == sha => {
                        let mut plan = Plan::clone(plan);
                        plan.status = status;
                        plans.push(plan);
                    }
                    _ => to_compile.push((key, sha, v, status)),
                }
            }
        }
        if !to_compile.is_empty() {
            let compiled = tokio::task::spawn_blocking(move || {
                to_compile
                    .into_iter()
                    .map(|(key, sha, v, status)| {
                        let m = &v.meta;
                        let name = source_name(&m.tenant, &m.id, m.version);
                        let result = compile_one(&name, &v.yaml).and_then(|plan| {
                            let tenant = plan.tenant.as_deref().unwrap_or(GLOBAL);
                            if tenant == m.tenant && *plan.id == *m.id && plan.version == m.version
                            {
                                Ok(plan)
                            } else {
                                Err(vec![])
                            }
                        });
                        (key, sha, status, result)
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .map_err(|e| AppError::Internal(format!("compiling playbooks: {e}")))?;
            let mut cache = self.cache.lock();
            for ((tenant, id, version), sha, status, result) in compiled {
                match result {
                    Ok(plan) => {
                        let plan = Arc::new(plan);
                        let mut live = Plan::clone(&plan);
                        live.status = status;
                        plans.push(live);
                        cache.insert((tenant, id, version), (sha, plan));
                    }
                    Err(diagnostics) => {
                        self.metrics.versions_skipped.inc();
                        let why: Vec<String> =
                            diagnostics.iter().map(ToString::to_string).collect();
                        tracing::error!(
                            playbook = %source_name(&tenant, &id, version),
                            problems = %if why.is_empty() { "its text names another playbook".to_owned() } else { why.join("; ") },
                            "a stored version does not compile; it is left out of the set"
                        );
                    }
                }
            }
        }
        Ok(plans)
    }

    /// Compiles active experiments (cached by their text's hash), each marked active (the
    /// store's status counts, not the text's). One whose text no longer compiles, or
    /// names another experiment than its record, is left out and logged.
    async fn compile_experiments(
        &self,
        records: Vec<ExperimentRecord>,
    ) -> Result<Vec<ExperimentPlan>, AppError> {
        let mut out = Vec::with_capacity(records.len());
        let mut to_compile = Vec::new();
        {
            let cache = self.experiment_cache.lock();
            for r in records {
                let sha = text_sha256(&r.yaml);
                match cache.get(&(r.tenant.clone(), r.id.clone())) {
                    Some((cached, plan)) if *cached == sha => out.push(ExperimentPlan::clone(plan)),
                    _ => to_compile.push((sha, r)),
                }
            }
        }
        if !to_compile.is_empty() {
            let compiled = tokio::task::spawn_blocking(move || {
                to_compile
                    .into_iter()
                    .map(|(sha, r)| {
                        let name = format!("{}/experiment:{}", r.tenant, r.id);
                        let result = compile_experiment(&name, &r.yaml).and_then(|plan| {
                            let tenant = plan.tenant.as_deref().unwrap_or(GLOBAL);
                            if tenant == r.tenant && plan.id == r.id {
                                Ok(plan)
                            } else {
                                Err(vec![])
                            }
                        });
                        (r.tenant, r.id, sha, result)
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .map_err(|e| AppError::Internal(format!("compiling experiments: {e}")))?;
            let mut cache = self.experiment_cache.lock();
            for (tenant, id, sha, result) in compiled {
                match result {
                    Ok(plan) => {
                        out.push(plan.clone());
                        cache.insert((tenant, id), (sha, Arc::new(plan)));
                    }
                    Err(diagnostics) => {
                        self.metrics.versions_skipped.inc();
                        let why: Vec<String> =
                            diagnostics.iter().map(ToString::to_string).collect();
                        tracing::error!(
                            experiment = %format!("{tenant}/{id}"),
                            problems = %if why.is_empty() { "its text names another experiment".to_owned() } else { why.join("; ") },
                            "a stored active experiment does not compile; it is left out of the set"
                        );
                    }
                }
            }
        }
        for plan in &mut out {
            plan.status = ExperimentStatus::Active;
        }
        Ok(out)
    }

    /// The live set: the published plans and the active experiments that fit them. An
    /// experiment that cannot join (its playbook no longer published, a second active
    /// experiment of one id or on one playbook) is left out and logged, oldest kept:
    /// one bad row never keeps the host from serving.
    fn assemble(
        &self,
        plans: Vec<Plan>,
        experiments: Vec<ExperimentPlan>,
    ) -> Result<PlaybookSet, AppError> {
        let mut kept: Vec<ExperimentPlan> = Vec::with_capacity(experiments.len());
        {
            let plan_refs: Vec<&Plan> = plans.iter().collect();
            for e in experiments {
                let kept_refs: Vec<&ExperimentPlan> = kept.iter().collect();
                match experiment_conflict(&e, &plan_refs, &kept_refs) {
                    None => kept.push(e),
                    Some(why) => {
                        self.metrics.versions_skipped.inc();
                        tracing::error!(experiment = %e.id, problem = %why, "an active experiment is left out of the set");
                    }
                }
            }
        }
        match PlaybookSet::from_parts(plans.clone(), kept) {
            Ok(set) => Ok(set),
            Err(e) => {
                self.metrics.versions_skipped.inc();
                tracing::error!(problems = %e, "the active experiments do not form a set with the playbooks; serving without experiments");
                PlaybookSet::from_plans(plans).map_err(|e| AppError::Internal(e.to_string()))
            }
        }
    }

    /// Rebuilds the live set from the store's published versions and swaps it in.
    ///
    /// # Errors
    /// The store's error (the old set stays), or an internal error.
    pub async fn reload(&self, store: &dyn Store) -> Result<(), AppError> {
        let _one_at_a_time = self.reloading.lock().await;
        let result = self.reload_locked(store).await;
        if result.is_err() {
            self.metrics.set_reload_failures.inc();
        }
        result
    }

    async fn reload_locked(&self, store: &dyn Store) -> Result<(), AppError> {
        // The revision is read first: a change committed meanwhile carries a higher one,
        // so the next check loads it again rather than missing it.
        let revision = store.playbook_revision().await?;
        let published = store.published_playbooks().await?;
        let keep: std::collections::HashSet<CacheKey> = published
            .iter()
            .map(|v| (v.meta.tenant.clone(), v.meta.id.clone(), v.meta.version))
            .collect();
        let versions = published
            .into_iter()
            .map(|v| (v, Status::Published))
            .collect();
        let plans = self.compile_plans(versions).await?;
        // Active experiments of every tenant join the set, oldest first (the one kept
        // when two conflict).
        let mut active: Vec<ExperimentRecord> = store
            .list_experiments(Scope::All)
            .await?
            .into_iter()
            .filter(|e| e.status == ACTIVE)
            .collect();
        active.sort_by(|a, b| {
            (a.updated_at, &a.tenant, &a.id).cmp(&(b.updated_at, &b.tenant, &b.id))
        });
        let keep_experiments: std::collections::HashSet<(String, String)> = active
            .iter()
            .map(|e| (e.tenant.clone(), e.id.clone()))
            .collect();
        let experiments = self.compile_experiments(active).await?;
        let set = self.assemble(plans, experiments)?;
        // Drafts compiled for a simulation, and versions no longer published, leave the
        // cache: it holds the live set's plans, not every text ever seen.
        self.cache.lock().retain(|key, _| keep.contains(key));
        self.experiment_cache
            .lock()
            .retain(|key, _| keep_experiments.contains(key));
        self.engine
            .reload_shared(Arc::new(set))
            .map_err(|e| {
                // The sink's message may name hosts: logged, not shown.
                tracing::warn!(error = %e, "the audit of a reload failed");
                AppError::core_with(
                    "the audit log is unavailable, so the playbooks were not reloaded; try again shortly"
                        .to_owned(),
                    e.info(),
                )
            })?;
        self.loaded.store(revision, Ordering::Release);
        self.metrics.set_revision.set(revision);
        self.metrics.set_reloads.inc();
        tracing::info!(revision, "live playbook set loaded");
        Ok(())
    }

    /// Reloads when the store's revision differs from the loaded one.
    ///
    /// # Errors
    /// As [`Live::reload`].
    pub async fn reload_if_changed(&self, store: &dyn Store) -> Result<bool, AppError> {
        let revision = store.playbook_revision().await?;
        if self.revision() == Some(revision) {
            return Ok(false);
        }
        self.reload(store).await?;
        Ok(true)
    }

    /// Follows changes made by other replicas: on each store notification and at least
    /// every `interval`, reloads when the revision moved. Returns once it listens (so a
    /// change made after it returns is noticed); the task ends when the host stops.
    pub async fn follow(
        self: Arc<Self>,
        store: Arc<dyn Store>,
        interval: Duration,
        mut stopping: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let notify = Arc::new(Notify::new());
        if let Err(e) = store.watch(Arc::clone(&notify)).await {
            tracing::warn!(error = %e, "cannot listen for playbook-set changes; polling only");
        }
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = notify.notified() => {}
                    () = tokio::time::sleep(interval) => {}
                    _ = stopping.changed() => break,
                }
                if let Err(e) = self.reload_if_changed(&*store).await {
                    tracing::warn!(error = %e, "checking the playbook set failed");
                }
            }
        })
    }
}

/// What a first start imported.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Imported {
    /// Playbook versions.
    pub playbooks: usize,
    /// Experiments.
    pub experiments: usize,
}

/// On first start (a store without playbooks), imports every document under `dir` as
/// authored: each with its own tenant and status.
///
/// # Errors
/// [`AppError::Invalid`] with the diagnostics when the library does not load; the store's
/// errors.
pub async fn import_seed(
    store: &dyn Store,
    dir: &std::path::Path,
    now: Timestamp,
) -> Result<Imported, AppError> {
    let dir = dir.to_path_buf();
    let documents = tokio::task::spawn_blocking(move || seed_documents(&dir))
        .await
        .map_err(|e| AppError::Internal(format!("reading seed playbooks: {e}")))??;
    let mut playbooks = Vec::new();
    let mut experiments = Vec::new();
    for doc in documents {
        match doc {
            SeedDoc::Playbook(meta, yaml) => playbooks.push(PlaybookVersion {
                meta: PlaybookMeta {
                    created_at: now,
                    updated_at: now,
                    published_at: (meta.status == Status::Published).then_some(now),
                    ..meta
                },
                yaml,
            }),
            SeedDoc::Experiment(e) => experiments.push(ExperimentRecord {
                created_at: now,
                updated_at: now,
                ..e
            }),
        }
    }
    let audit = NewAudit::new(
        now,
        GLOBAL,
        SEED_AUTHOR,
        "playbooks.imported",
        "playbooks",
        Value::Null,
        serde_json::json!({
            "versions": playbooks.iter().map(|v| source_name(&v.meta.tenant, &v.meta.id, v.meta.version)).collect::<Vec<_>>(),
        }),
    );
    let imported = store.import_playbooks(&playbooks, &audit).await?;
    let mut result = Imported {
        playbooks: imported,
        experiments: 0,
    };
    if imported > 0 {
        for e in &experiments {
            let audit = NewAudit::new(
                now,
                &e.tenant,
                SEED_AUTHOR,
                "experiment.imported",
                &e.id,
                Value::Null,
                serde_json::json!({"status": e.status}),
            );
            store.insert_experiment(e, &audit).await?;
            result.experiments += 1;
        }
    }
    Ok(result)
}

/// The author recorded for imported documents.
pub const SEED_AUTHOR: &str = "mmm-host";

enum SeedDoc {
    Playbook(PlaybookMeta, String),
    Experiment(ExperimentRecord),
}

fn seed_documents(dir: &std::path::Path) -> Result<Vec<SeedDoc>, AppError> {
    let (sources, mut problems) =
        mmm_engine::playbook::read_sources(&[dir], &mmm_engine::playbook::LoadLimits::default());
    if let Err(e) = PlaybookSet::from_sources(&sources) {
        problems.extend(e.diagnostics);
    }
    if !problems.is_empty() {
        return Err(AppError::playbook_invalid(&problems));
    }
    let epoch = Timestamp::UNIX_EPOCH;
    let mut docs = Vec::new();
    for source in &sources {
        for text in split_documents(&source.text) {
            let value = yaml_to_json(&text).map_err(|e| {
                AppError::Internal(format!("{}: a document is not YAML: {e}", source.name))
            })?;
            let meta = value.get("metadata");
            let field = |key: &str| {
                meta.and_then(|m| m.get(key))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned()
            };
            let tenant = match field("tenant") {
                t if t.is_empty() => GLOBAL.to_owned(),
                t => t,
            };
            match value.get("kind").and_then(Value::as_str) {
                Some("Experiment") => docs.push(SeedDoc::Experiment(ExperimentRecord {
                    tenant,
                    id: field("id"),
                    status: match field("status") {
                        s if s.is_empty() => "active".to_owned(),
                        s => s,
                    },
                    yaml: text,
                    author: SEED_AUTHOR.to_owned(),
                    revision: 1,
                    created_at: epoch,
                    updated_at: epoch,
                })),
                _ => {
                    let plan = compile_one(&source.name, &text)
                        .map_err(|d| AppError::playbook_invalid(&d))?;
                    docs.push(SeedDoc::Playbook(
                        PlaybookMeta {
                            tenant: plan.tenant.clone().unwrap_or_else(|| GLOBAL.to_owned()),
                            id: plan.id.to_string(),
                            version: plan.version,
                            status: plan.status,
                            author: SEED_AUTHOR.to_owned(),
                            created_at: epoch,
                            updated_at: epoch,
                            published_at: None,
                        },
                        text,
                    ));
                }
            }
        }
    }
    Ok(docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_split_at_marker_lines_only() {
        let text = "# lib\na: 1\n---\nb: |\n  --- not a marker\n  x\n--- # c\nc: 3\n---\n\n# only a comment\n";
        assert_eq!(
            split_documents(text),
            ["# lib\na: 1\n", "b: |\n  --- not a marker\n  x\n", "c: 3\n"]
        );
        assert_eq!(split_documents("---\na: 1\n"), ["a: 1\n"]);
        assert!(split_documents("").is_empty());
    }

    #[test]
    fn one_experiment_per_text_compiled_beside_a_stand_in() {
        let doc = "apiVersion: mmm/v1\nkind: Experiment\nmetadata: {id: e, tenant: acme, status: paused}\nspec:\n  playbook: large-pr\n  variants: [{name: a, weight: 1}]\n";
        let plan = compile_experiment("x", doc).unwrap();
        assert_eq!(
            (plan.id.as_str(), plan.playbook.as_str()),
            ("e", "large-pr")
        );
        assert_eq!(plan.tenant.as_deref(), Some("acme"));
        assert!(experiment_diagnostics("x", doc).is_empty());
        let two = format!("{doc}---\n{}", doc.replace("id: e,", "id: f,"));
        assert_eq!(
            compile_experiment("x", &two).unwrap_err()[0].rule,
            "one-experiment"
        );
        assert_eq!(
            compile_experiment("x", "# nothing\n").unwrap_err()[0].rule,
            "one-experiment"
        );
        let bad = doc.replace("playbook: large-pr", "playbook: Not An Id");
        let errors = compile_experiment("x", &bad).unwrap_err();
        assert!(
            !errors.is_empty() && errors.iter().all(|d| d.file == "x"),
            "{errors:?}"
        );
    }

    #[test]
    fn one_playbook_per_text() {
        let doc = "apiVersion: mmm/v1\nkind: Playbook\nmetadata: {id: a, version: 1, tenant: \"*\", status: draft}\nspec:\n  triggers: [pr.opened]\n  actions: [{type: mirror, surfaces: [ide], title: T, text: \"A pull request was opened.\"}]\n";
        assert_eq!(&*compile_one("x", doc).unwrap().id, "a");
        let two = format!("{doc}---\n{}", doc.replace("version: 1", "version: 2"));
        let err = compile_one("x", &two).unwrap_err();
        assert_eq!(err[0].rule, "one-playbook");
        assert_eq!(
            compile_one("x", "# nothing\n").unwrap_err()[0].rule,
            "one-playbook"
        );
    }
}
