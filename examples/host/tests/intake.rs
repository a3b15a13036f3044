//! Broker intake on real brokers: NATS JetStream (`MMM_TEST_NATS_URL`) and RabbitMQ
//! (`MMM_TEST_AMQP_URL`), each test with its own stream, subjects, consumer and queues,
//! deleted after. Unset: skipped with a message (a failure under `CI=true`). The dedupe
//! marker's store side runs on every backend.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use futures_util::StreamExt as _;
use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicPublishOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::BasicProperties;
use mmm_host::intake::amqp::{AmqpConfig, AmqpConnect};
use mmm_host::intake::nats::{NatsConfig, NatsConnect};
use mmm_host::intake::{self, IntakeSettings, Verdict};
use mmm_host::metrics::IntakeLabels;
use mmm_host::store::{DecisionBatch, SeenSignal};
use serde_json::{json, Value};

use crate::common::{backends, sqlite, ts, Host, HEAVY};

static UNIQUE: AtomicUsize = AtomicUsize::new(0);

/// A name no other test (or helper, on the shared brokers) uses.
fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}x{}x{}",
        std::process::id(),
        UNIQUE.fetch_add(1, Ordering::SeqCst),
        jiff::Timestamp::now().as_millisecond() % 1_000_000
    )
}

fn broker_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) => Some(url),
        Err(_) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{var} is not set under CI=true: the broker intake tests must run"
            );
            eprintln!("note: {var} is not set; this broker intake test is skipped");
            None
        }
    }
}

fn signal(tenant: &str, id: &str, actor: &str) -> Value {
    json!({"signal_id": id, "tenant_id": tenant, "actor_id": actor, "kind": "pr.opened",
           "source": "scm", "occurred_at": "2026-11-24T10:00:00Z", "surface": "pr_comment",
           "repo": {"id": format!("{tenant}/api"), "branch": "feat/x"},
           "payload": {"lines_changed": 420, "files_changed": 12}})
}

fn settings() -> IntakeSettings {
    IntakeSettings {
        in_flight: 8,
        retry_delay: Duration::from_millis(200),
        grace: Duration::from_secs(5),
        // Well under the tests' 2 s NATS ack wait.
        progress_every: Duration::from_millis(500),
    }
}

fn count(host: &Host, source: &str, result: &str) -> u64 {
    host.state
        .metrics
        .intake_messages
        .get_or_create(&IntakeLabels {
            source: source.to_owned(),
            result: result.to_owned(),
        })
        .get()
}

/// Waits until `done` holds, for at most `secs` seconds.
async fn wait_until(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        // Real time: the broker delivers and the host decides on their own schedule.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `signal_id` of every stored receipt (each receipt is one decision).
async fn decided_ids(host: &Host) -> Vec<String> {
    let rows = host
        .db
        .store
        .list_receipts(None, None, 0, 10_000)
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            let envelope: Value = serde_json::from_str(&r.envelope).unwrap();
            let bytes =
                mmm_engine::receipt::decode_base64(envelope["payload"].as_str().unwrap()).unwrap();
            let payload: Value = serde_json::from_slice(&bytes).unwrap();
            payload["signal"]["signal_id"].as_str().unwrap().to_owned()
        })
        .collect()
}

// ---- NATS --------------------------------------------------------------------------------

struct Nats {
    config: NatsConfig,
    js: jetstream::Context,
    subject: String,
}

impl Nats {
    async fn new(url: String) -> Nats {
        let base = unique("t");
        let config = NatsConfig {
            url,
            stream: format!("S_{base}"),
            subjects: vec![format!("{base}.signals.>")],
            consumer: format!("c_{base}"),
            dlq_subject: format!("{base}.dlq.signals"),
            dlq_stream: format!("D_{base}"),
            prefetch: 16,
            // Short, so that redelivery tests do not wait long.
            ack_wait: Duration::from_secs(2),
        };
        let js = intake::nats::ensure_streams(&config).await.unwrap();
        Nats {
            subject: format!("{base}.signals.acme"),
            config,
            js,
        }
    }

    async fn publish(&self, body: &[u8], traceparent: Option<&str>) {
        let mut headers = async_nats::HeaderMap::new();
        if let Some(tp) = traceparent {
            headers.insert("traceparent", tp);
        }
        self.js
            .publish_with_headers(self.subject.clone(), headers, body.to_vec().into())
            .await
            .unwrap()
            .await
            .unwrap();
    }

    async fn consumer_info(&self) -> jetstream::consumer::Info {
        let mut consumer: jetstream::consumer::PullConsumer = self
            .js
            .get_stream(&self.config.stream)
            .await
            .unwrap()
            .get_consumer(&self.config.consumer)
            .await
            .unwrap();
        consumer.info().await.unwrap().clone()
    }

    /// The dead letters: (body, error code, error message).
    async fn dead_letters(&self) -> Vec<(Vec<u8>, String, String)> {
        let stream = self.js.get_stream(&self.config.dlq_stream).await.unwrap();
        let n = stream.get_info().await.unwrap().state.messages;
        let mut out = Vec::new();
        for seq in 1..=n {
            let m = stream.get_raw_message(seq).await.unwrap();
            let header = |name: &str| {
                m.headers
                    .get(name)
                    .map(|v| v.as_str().to_owned())
                    .unwrap_or_default()
            };
            out.push((
                m.payload.to_vec(),
                header("MMM-Error-Code"),
                header("MMM-Error"),
            ));
        }
        out
    }

    async fn delete(self) {
        let _ = self.js.delete_stream(&self.config.stream).await;
        let _ = self.js.delete_stream(&self.config.dlq_stream).await;
    }
}

#[tokio::test]
async fn nats_decides_then_acks_and_dead_letters_malformed_messages() {
    let Some(url) = broker_url("MMM_TEST_NATS_URL") else {
        return;
    };
    let nats = Nats::new(url).await;
    let host = Host::signing(sqlite().await, "nats-a").await;
    let valid = signal("acme", "sig-nats-1", "dev-1");
    nats.publish(
        json!({"signal": valid, "context": {"actor": {"type": "human"}}})
            .to_string()
            .as_bytes(),
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    )
    .await;
    nats.publish(b"not json {", None).await;
    nats.publish(
        json!({"signal": signal("acme", "sig-nats-2", "dev-2"), "context": {"preferences": {}}})
            .to_string()
            .as_bytes(),
        None,
    )
    .await;
    nats.publish(b"[1, 2]", None).await;

    let task = intake::spawn(
        host.state.clone(),
        Arc::new(NatsConnect::new(nats.config.clone())),
        settings(),
    );
    wait_until("one decision and three dead letters", 30, || {
        count(&host, "nats", "decided") == 1 && count(&host, "nats", "dead_lettered") == 3
    })
    .await;
    assert_eq!(decided_ids(&host).await, ["sig-nats-1"]);
    assert!(host
        .db
        .store
        .signal_decided_since("acme", "sig-nats-1", ts("2026-01-01T00:00:00Z"))
        .await
        .unwrap());

    let dead = nats.dead_letters().await;
    assert_eq!(dead.len(), 3, "{dead:?}");
    assert_eq!(dead[0].0, b"not json {");
    assert_eq!(dead[0].1, "INVALID_REQUEST");
    assert!(dead[0].2.contains("not JSON"), "{}", dead[0].2);
    assert_eq!(dead[1].1, "INVALID_REQUEST");
    assert!(dead[1].2.contains("context.preferences"), "{}", dead[1].2);
    assert_eq!(dead[2].0, b"[1, 2]");
    assert!(dead[2].2.contains("JSON object"), "{}", dead[2].2);

    // Acknowledged: nothing pending, and nothing comes back after the ack wait.
    // Real time: redelivery would follow the consumer's 2 s ack wait.
    tokio::time::sleep(nats.config.ack_wait + Duration::from_secs(1)).await;
    let info = nats.consumer_info().await;
    assert_eq!(info.num_ack_pending, 0, "{info:?}");
    assert_eq!(info.num_pending, 0, "{info:?}");
    assert_eq!(info.num_redelivered, 0, "{info:?}");
    assert_eq!(count(&host, "nats", "decided"), 1);
    assert_eq!(count(&host, "nats", "dead_lettered"), 3);
    assert_eq!(nats.dead_letters().await.len(), 3);

    host.state.shutdown.begin();
    task.await.unwrap();
    nats.delete().await;
}

#[tokio::test]
async fn nats_the_same_signal_id_twice_is_decided_once() {
    let Some(url) = broker_url("MMM_TEST_NATS_URL") else {
        return;
    };
    let nats = Nats::new(url).await;
    let host = Host::signing(sqlite().await, "nats-b").await;
    let body = signal("acme", "sig-twice", "dev-1").to_string();
    nats.publish(body.as_bytes(), None).await;
    nats.publish(body.as_bytes(), None).await;
    let task = intake::spawn(
        host.state.clone(),
        Arc::new(NatsConnect::new(nats.config.clone())),
        settings(),
    );
    wait_until("one decision and one duplicate", 30, || {
        count(&host, "nats", "decided") == 1 && count(&host, "nats", "duplicate") == 1
    })
    .await;
    assert_eq!(decided_ids(&host).await, ["sig-twice"]);
    host.state.shutdown.begin();
    task.await.unwrap();
    nats.delete().await;
}

#[tokio::test]
async fn nats_a_message_decided_but_not_acked_is_skipped_when_delivered_again() {
    let Some(url) = broker_url("MMM_TEST_NATS_URL") else {
        return;
    };
    let nats = Nats::new(url).await;
    let host = Host::signing(sqlite().await, "nats-c").await;
    let body = signal("acme", "sig-crash", "dev-1").to_string();
    nats.publish(body.as_bytes(), None).await;

    // The "crashed" consumer: takes the message, decides it (receipt and marker
    // committed) and goes away before acknowledging.
    {
        let consumer: jetstream::consumer::PullConsumer = nats
            .js
            .get_stream(&nats.config.stream)
            .await
            .unwrap()
            .get_or_create_consumer(
                &nats.config.consumer,
                jetstream::consumer::pull::Config {
                    durable_name: Some(nats.config.consumer.clone()),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait: nats.config.ack_wait,
                    max_ack_pending: 16,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let mut batch = consumer.fetch().max_messages(1).messages().await.unwrap();
        let message = batch.next().await.unwrap().unwrap();
        let verdict = intake::handle(
            &host.state,
            "nats",
            &message.payload,
            None,
            &intake::InFlight::default(),
        )
        .await;
        assert_eq!(verdict, Verdict::Decided);
        drop(message);
    }
    assert_eq!(decided_ids(&host).await, ["sig-crash"]);

    // The restarted intake gets it again after the ack wait, and skips it.
    let task = intake::spawn(
        host.state.clone(),
        Arc::new(NatsConnect::new(nats.config.clone())),
        settings(),
    );
    wait_until("the redelivery skipped as a duplicate", 30, || {
        count(&host, "nats", "duplicate") == 1
    })
    .await;
    assert_eq!(count(&host, "nats", "decided"), 0);
    assert_eq!(decided_ids(&host).await, ["sig-crash"]);
    host.state.shutdown.begin();
    task.await.unwrap();
    nats.delete().await;
}

// ---- RabbitMQ ----------------------------------------------------------------------------

struct Amqp {
    config: AmqpConfig,
    connection: lapin::Connection,
    channel: lapin::Channel,
}

impl Amqp {
    async fn new(url: String) -> Amqp {
        let base = unique("t.");
        let config = AmqpConfig {
            url,
            queue: format!("{base}.signals"),
            dlq_queue: format!("{base}.signals.dlq"),
            prefetch: 16,
        };
        let (connection, channel) = intake::amqp::ensure_queues(&config).await.unwrap();
        Amqp {
            config,
            connection,
            channel,
        }
    }

    async fn publish(&self, body: &[u8], traceparent: Option<&str>) {
        let mut properties = BasicProperties::default().with_delivery_mode(2);
        if let Some(tp) = traceparent {
            let mut headers = FieldTable::default();
            headers.insert("traceparent".into(), AMQPValue::LongString(tp.into()));
            properties = properties.with_headers(headers);
        }
        self.channel
            .basic_publish(
                "".into(),
                self.config.queue.as_str().into(),
                BasicPublishOptions::default(),
                body,
                properties,
            )
            .await
            .unwrap();
    }

    async fn ready(&self, queue: &str) -> u32 {
        self.channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap()
            .message_count()
    }

    /// Takes the dead letters: (body, error code, error message).
    async fn dead_letters(&self) -> Vec<(Vec<u8>, String, String)> {
        let mut out = Vec::new();
        while let Some(m) = self
            .channel
            .basic_get(
                self.config.dlq_queue.as_str().into(),
                BasicGetOptions::default(),
            )
            .await
            .unwrap()
        {
            let headers = m.delivery.properties.headers().clone().unwrap_or_default();
            let header = |name: &str| match headers.inner().get(name) {
                Some(AMQPValue::LongString(s)) => {
                    String::from_utf8_lossy(s.as_bytes()).into_owned()
                }
                _ => String::new(),
            };
            out.push((
                m.delivery.data.clone(),
                header("MMM-Error-Code"),
                header("MMM-Error"),
            ));
            m.delivery.ack(BasicAckOptions::default()).await.unwrap();
        }
        out
    }

    async fn delete(self) {
        for q in [&self.config.queue, &self.config.dlq_queue] {
            let _ = self
                .channel
                .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
        let _ = self.connection.close(200, "done".into()).await;
    }
}

#[tokio::test]
async fn amqp_decides_dedupes_and_dead_letters() {
    let Some(url) = broker_url("MMM_TEST_AMQP_URL") else {
        return;
    };
    let amqp = Amqp::new(url).await;
    let host = Host::signing(sqlite().await, "amqp-a").await;
    let body = json!({"signal": signal("acme", "sig-amqp-1", "dev-1")}).to_string();
    amqp.publish(
        body.as_bytes(),
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    )
    .await;
    amqp.publish(b"\xff\xfe", None).await;
    amqp.publish(
        json!({"signal": signal("acme", "sig-amqp-2", "dev-2"), "explain": true})
            .to_string()
            .as_bytes(),
        None,
    )
    .await;
    let task = intake::spawn(
        host.state.clone(),
        Arc::new(AmqpConnect::new(amqp.config.clone())),
        settings(),
    );
    wait_until("one decision and two dead letters", 30, || {
        count(&host, "amqp", "decided") == 1 && count(&host, "amqp", "dead_lettered") == 2
    })
    .await;
    // The same signal again, once the first is decided: skipped.
    amqp.publish(body.as_bytes(), None).await;
    wait_until("the duplicate", 30, || {
        count(&host, "amqp", "duplicate") == 1
    })
    .await;
    assert_eq!(decided_ids(&host).await, ["sig-amqp-1"]);

    let dead = amqp.dead_letters().await;
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert_eq!(dead[0].0, b"\xff\xfe");
    assert_eq!(dead[0].1, "INVALID_REQUEST");
    assert!(dead[0].2.contains("not JSON"), "{}", dead[0].2);
    assert_eq!(dead[1].1, "INVALID_REQUEST");
    assert!(dead[1].2.contains("`explain`"), "{}", dead[1].2);

    // Everything was acknowledged: once the intake has stopped (its channel closed,
    // which would give back anything unacknowledged), the queue is empty.
    host.state.shutdown.begin();
    task.await.unwrap();
    assert_eq!(amqp.ready(&amqp.config.queue).await, 0);
    assert_eq!(count(&host, "amqp", "decided"), 1);
    amqp.delete().await;
}

// ---- both brokers --------------------------------------------------------------------------

/// What the shutdown test needs of a broker under test.
trait TestBroker {
    /// The `source` label of its intake.
    const SOURCE: &'static str;
    /// The intake's connection to it.
    fn connect(&self) -> Arc<dyn intake::Connect>;
    /// Publishes one message.
    async fn send(&self, body: &[u8]);
    /// Messages not yet acknowledged: pending or in flight (NATS), ready (RabbitMQ).
    async fn unacked(&self) -> u64;
    /// Deletes what the test created.
    async fn remove(self);
}

impl TestBroker for Nats {
    const SOURCE: &'static str = "nats";
    fn connect(&self) -> Arc<dyn intake::Connect> {
        Arc::new(NatsConnect::new(self.config.clone()))
    }
    async fn send(&self, body: &[u8]) {
        self.publish(body, None).await;
    }
    async fn unacked(&self) -> u64 {
        let info = self.consumer_info().await;
        info.num_pending + info.num_ack_pending as u64
    }
    async fn remove(self) {
        self.delete().await;
    }
}

impl TestBroker for Amqp {
    const SOURCE: &'static str = "amqp";
    fn connect(&self) -> Arc<dyn intake::Connect> {
        Arc::new(AmqpConnect::new(self.config.clone()))
    }
    async fn send(&self, body: &[u8]) {
        self.publish(body, None).await;
    }
    async fn unacked(&self) -> u64 {
        u64::from(self.ready(&self.config.queue).await)
    }
    async fn remove(self) {
        self.delete().await;
    }
}

/// An intake stopped without grace abandons what it has not acknowledged; the next one
/// (another host on the same store) gets it, and every signal is decided exactly once.
async fn a_stopped_intake_leaves_what_it_did_not_ack_to_the_next<B: TestBroker>(broker: B) {
    let source = B::SOURCE;
    let db = sqlite().await;
    let first = Host::signing(db.shared(), &format!("{source}-d1")).await;
    const N: usize = 60;
    for i in 0..N {
        let body = signal("acme", &format!("sig-stop-{i}"), &format!("dev-{i}")).to_string();
        broker.send(body.as_bytes()).await;
    }
    // No grace: what is in flight when the shutdown begins is abandoned unacknowledged.
    let task = intake::spawn(
        first.state.clone(),
        broker.connect(),
        IntakeSettings {
            grace: Duration::ZERO,
            ..settings()
        },
    );
    // Real time: the intake decides on its own tasks; 30 s bounds a few decisions on a
    // loaded 2-core machine.
    wait_until("a few decisions", 30, || {
        count(&first, source, "decided") >= 5
    })
    .await;
    first.state.shutdown.begin();
    task.await.unwrap();
    let by_first = count(&first, source, "decided");
    assert!(
        by_first < N as u64,
        "the first intake decided everything before it stopped"
    );
    assert!(
        broker.unacked().await > 0,
        "nothing was left unacknowledged"
    );

    let second = Host::signing(db, &format!("{source}-d2")).await;
    let task = intake::spawn(second.state.clone(), broker.connect(), settings());
    let settled =
        || by_first + count(&second, source, "decided") + count(&second, source, "duplicate");
    // Real time: the broker's redelivery after its ack wait is what this waits for (the
    // broker keeps its own clock); 120 s bounds it on a loaded machine.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while settled() < N as u64 {
        if tokio::time::Instant::now() >= deadline {
            panic!(
                "timed out waiting for every signal decided: first decided {by_first}; second decided {}, duplicate {}, retried {}, dead-lettered {}; unacked on the broker {}",
                count(&second, source, "decided"),
                count(&second, source, "duplicate"),
                count(&second, source, "retried"),
                count(&second, source, "dead_lettered"),
                broker.unacked().await
            );
        }
        // Real time: NATS redelivers what the first left after its ack wait (2 s here);
        // 120 s bounds the rest on a loaded machine.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    second.state.shutdown.begin();
    task.await.unwrap();
    let mut ids = decided_ids(&second).await;
    ids.sort();
    let mut expected: Vec<String> = (0..N).map(|i| format!("sig-stop-{i}")).collect();
    expected.sort();
    assert_eq!(ids, expected, "every signal decided exactly once");
    assert_eq!(broker.unacked().await, 0);
    broker.remove().await;
}

#[tokio::test]
async fn nats_a_stopped_intake_leaves_what_it_did_not_ack_to_the_next() {
    let Some(url) = broker_url("MMM_TEST_NATS_URL") else {
        return;
    };
    let _heavy = HEAVY.lock().await;
    a_stopped_intake_leaves_what_it_did_not_ack_to_the_next(Nats::new(url).await).await;
}

#[tokio::test]
async fn amqp_a_stopped_intake_leaves_what_it_did_not_ack_to_the_next() {
    let Some(url) = broker_url("MMM_TEST_AMQP_URL") else {
        return;
    };
    let _heavy = HEAVY.lock().await;
    a_stopped_intake_leaves_what_it_did_not_ack_to_the_next(Amqp::new(url).await).await;
}

// ---- the marker ------------------------------------------------------------------------------

#[tokio::test]
async fn decided_markers_are_written_with_the_decisions_and_kept_24_hours() {
    for db in backends().await {
        let s = &*db.store;
        let seen = |id: &str, at: &str| SeenSignal {
            tenant: "acme".to_owned(),
            signal_id: id.to_owned(),
            decided_at: ts(at),
        };
        // Two deliveries that raced land in one batch: written once, the first kept.
        let batch = DecisionBatch {
            seen_signals: vec![
                seen("s1", "2026-11-22T10:00:00Z"),
                seen("s1", "2026-11-22T10:00:01Z"),
                seen("s2", "2026-11-22T10:00:00Z"),
            ],
            ..DecisionBatch::default()
        };
        assert!(!batch.is_empty());
        s.record_decisions(&batch).await.unwrap();
        assert!(s
            .signal_decided_since("acme", "s1", ts("2026-11-22T10:00:00Z"))
            .await
            .unwrap());
        assert!(!s
            .signal_decided_since("acme", "s1", ts("2026-11-22T10:00:01Z"))
            .await
            .unwrap());
        assert!(!s
            .signal_decided_since("other", "s1", ts("2026-01-01T00:00:00Z"))
            .await
            .unwrap());
        // Within 24 h a later marker leaves the first; after 24 h it replaces it.
        let later = DecisionBatch {
            seen_signals: vec![
                seen("s1", "2026-11-23T09:00:00Z"),
                seen("s2", "2026-11-23T10:00:00Z"),
            ],
            ..DecisionBatch::default()
        };
        s.record_decisions(&later).await.unwrap();
        assert!(!s
            .signal_decided_since("acme", "s1", ts("2026-11-22T10:00:01Z"))
            .await
            .unwrap());
        assert!(s
            .signal_decided_since("acme", "s2", ts("2026-11-23T10:00:00Z"))
            .await
            .unwrap());
    }
}

#[tokio::test]
async fn markers_older_than_24_hours_are_purged() {
    let host = Host::new(sqlite().await).await;
    let s = &*host.db.store;
    let old = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(25);
    let recent = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1);
    assert!(s.mark_signal_decided("acme", "old", old).await.unwrap());
    assert!(s
        .mark_signal_decided("acme", "recent", recent)
        .await
        .unwrap());
    let task = intake::spawn_purge(host.state.clone(), Duration::from_secs(3600));
    let epoch = jiff::Timestamp::UNIX_EPOCH;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while s.signal_decided_since("acme", "old", epoch).await.unwrap() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the old marker was not purged"
        );
        // Real time: the purge runs on its own task.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(s
        .signal_decided_since("acme", "recent", epoch)
        .await
        .unwrap());
    host.state.shutdown.begin();
    task.await.unwrap();
}

#[tokio::test]
async fn a_decision_waiting_for_the_database_holds_its_message_and_is_made_once() {
    let (Some(nats_url), Some(amqp_url)) = (
        broker_url("MMM_TEST_NATS_URL"),
        broker_url("MMM_TEST_AMQP_URL"),
    ) else {
        return;
    };
    use sqlx::Connection as _;
    let nats = Nats::new(nats_url).await;
    let amqp = Amqp::new(amqp_url).await;
    let db = sqlite().await;
    let file = db.sqlite_file().unwrap();
    let host = Host::signing(db, "retry").await;
    // Another process holds SQLite's write lock: the decisions are made and signed, but
    // their commits fail (busy time-out) and the decision log retries them.
    let mut other = sqlx::SqliteConnection::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    let tasks = [
        intake::spawn(
            host.state.clone(),
            Arc::new(NatsConnect::new(nats.config.clone())),
            settings(),
        ),
        intake::spawn(
            host.state.clone(),
            Arc::new(AmqpConnect::new(amqp.config.clone())),
            settings(),
        ),
    ];
    nats.publish(
        signal("acme", "sig-wait-n", "dev-1").to_string().as_bytes(),
        None,
    )
    .await;
    amqp.publish(
        signal("acme", "sig-wait-a", "dev-2").to_string().as_bytes(),
        None,
    )
    .await;
    // Real time: the lock outlasts SQLite's 5 s busy time-out (so a commit fails and is
    // retried) and the 2 s ack wait (NATS would deliver the message again unless the
    // intake reports it in progress).
    tokio::time::sleep(Duration::from_secs(8)).await;
    for source in ["nats", "amqp"] {
        assert_eq!(count(&host, source, "decided"), 0, "{source}");
    }
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    other.close().await.unwrap();
    wait_until("both signals decided", 60, || {
        ["nats", "amqp"]
            .iter()
            .all(|s| count(&host, s, "decided") == 1)
    })
    .await;
    let mut ids = decided_ids(&host).await;
    ids.sort();
    assert_eq!(ids, ["sig-wait-a", "sig-wait-n"], "each decided once");
    for source in ["nats", "amqp"] {
        assert_eq!(count(&host, source, "duplicate"), 0, "{source}");
        assert_eq!(count(&host, source, "retried"), 0, "{source}");
    }
    let info = nats.consumer_info().await;
    assert_eq!(info.num_redelivered, 0, "{info:?}");
    assert_eq!(info.num_ack_pending, 0, "{info:?}");
    host.state.shutdown.begin();
    for task in tasks {
        task.await.unwrap();
    }
    nats.delete().await;
    amqp.delete().await;
}

/// IAM that is down until told otherwise.
struct FlakyIam(std::sync::atomic::AtomicBool);

impl mmm_engine::ports::Iam for FlakyIam {
    fn validate_actor(
        &self,
        _tenant_id: &str,
        _actor_id: &str,
    ) -> Result<mmm_engine::ports::ActorInfo, mmm_engine::ports::PortError> {
        if self.0.load(Ordering::SeqCst) {
            Ok(mmm_engine::ports::ActorInfo {
                active: true,
                roles: Vec::new(),
                timezone: None,
            })
        } else {
            Err(mmm_engine::ports::PortError::Unavailable(
                "IAM is down".to_owned(),
            ))
        }
    }
}

#[tokio::test]
async fn a_message_that_cannot_be_decided_now_goes_back_and_is_decided_later() {
    let (Some(nats_url), Some(amqp_url)) = (
        broker_url("MMM_TEST_NATS_URL"),
        broker_url("MMM_TEST_AMQP_URL"),
    ) else {
        return;
    };
    let nats = Nats::new(nats_url).await;
    let amqp = Amqp::new(amqp_url).await;
    let db = sqlite().await;
    let iam = Arc::new(FlakyIam(std::sync::atomic::AtomicBool::new(false)));
    let signing = mmm_engine::receipt::SigningKey::from_bytes(&crate::common::RECEIPT_SEED);
    let (signer, chain) = mmm_host::engine_setup::open_chain(&*db.store, signing, "flaky")
        .await
        .unwrap();
    // A breaker that never opens: the test turns IAM back on and expects it used at once.
    let config =
        mmm_engine::EngineConfig::from_json(&json!({"breaker_failure_threshold": 1_000_000}))
            .unwrap();
    let engine = mmm_engine::Engine::builder()
        .config(config)
        .iam(Arc::clone(&iam) as Arc<dyn mmm_engine::ports::Iam>)
        .receipt_signer(signer)
        .build();
    let key = mmm_host::auth::LocalKey::from_seed(crate::common::KEY_SEED);
    let verifier = mmm_host::auth::Verifier::new(
        mmm_host::auth::KeySet::fixed(vec![key.verification_key()]),
        None,
        None,
    );
    let state = mmm_host::AppState::with_engine(
        Arc::clone(&db.store),
        verifier,
        mmm_host::Settings::default(),
        engine,
    )
    .with_chain(Some(chain), Duration::from_millis(2));
    state.live.reload(&*db.store).await.unwrap();
    let count = |source: &str, result: &str| {
        state
            .metrics
            .intake_messages
            .get_or_create(&IntakeLabels {
                source: source.to_owned(),
                result: result.to_owned(),
            })
            .get()
    };
    let tasks = [
        intake::spawn(
            state.clone(),
            Arc::new(NatsConnect::new(nats.config.clone())),
            settings(),
        ),
        intake::spawn(
            state.clone(),
            Arc::new(AmqpConnect::new(amqp.config.clone())),
            settings(),
        ),
    ];
    nats.publish(
        signal("acme", "sig-later-n", "dev-1")
            .to_string()
            .as_bytes(),
        None,
    )
    .await;
    amqp.publish(
        signal("acme", "sig-later-a", "dev-2")
            .to_string()
            .as_bytes(),
        None,
    )
    .await;
    // Given back twice each: the broker delivered each again after the first retry.
    wait_until("each message given back twice", 30, || {
        count("nats", "retried") >= 2 && count("amqp", "retried") >= 2
    })
    .await;
    assert_eq!(count("nats", "decided") + count("amqp", "decided"), 0);
    iam.0.store(true, Ordering::SeqCst);
    wait_until("both decided", 30, || {
        count("nats", "decided") == 1 && count("amqp", "decided") == 1
    })
    .await;
    let stored = db.store.list_receipts(None, None, 0, 100).await.unwrap();
    assert_eq!(stored.len(), 2, "each decided once");
    state.shutdown.begin();
    for task in tasks {
        task.await.unwrap();
    }
    nats.delete().await;
    amqp.delete().await;
}

/// The value of `mmm_intake_messages_total{source, result}` in a metrics text.
fn metric(text: &str, source: &str, result: &str) -> u64 {
    let labels = [
        format!("source=\"{source}\""),
        format!("result=\"{result}\""),
    ];
    text.lines()
        .filter(|l| l.starts_with("mmm_intake_messages_total{"))
        .filter(|l| labels.iter().all(|p| l.contains(p.as_str())))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

#[tokio::test]
async fn the_binary_consumes_both_brokers_from_its_flags_and_stops_on_sigterm() {
    let (Some(nats_url), Some(amqp_url)) = (
        broker_url("MMM_TEST_NATS_URL"),
        broker_url("MMM_TEST_AMQP_URL"),
    ) else {
        return;
    };
    use std::process::{Command, Stdio};
    let _heavy = HEAVY.lock().await;
    let nats = Nats::new(nats_url.clone()).await;
    let amqp = Amqp::new(amqp_url.clone()).await;
    let data = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = &nats.config;
    let mut child = Command::new(env!("CARGO_BIN_EXE_mmm-host"))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--log-format",
            "text",
        ])
        .arg("--data-dir")
        .arg(data.path())
        .args(["--nats-url", &nats_url, "--nats-stream", &c.stream])
        .args([
            "--nats-subjects",
            &c.subjects[0],
            "--nats-consumer",
            &c.consumer,
        ])
        .args([
            "--nats-dlq-subject",
            &c.dlq_subject,
            "--nats-dlq-stream",
            &c.dlq_stream,
        ])
        .args(["--nats-ack-wait-seconds", "2"])
        .args(["--amqp-url", &amqp_url, "--amqp-queue", &amqp.config.queue])
        .args(["--amqp-dlq-queue", &amqp.config.dlq_queue])
        .env_remove("MMM_DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    nats.publish(
        signal("acme", "sig-bin-n", "dev-1").to_string().as_bytes(),
        None,
    )
    .await;
    nats.publish(b"{}", None).await;
    amqp.publish(
        signal("acme", "sig-bin-a", "dev-2").to_string().as_bytes(),
        None,
    )
    .await;
    amqp.publish(b"{}", None).await;
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/v1/mmm/metrics");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let text = match client.get(&url).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        let settled = ["nats", "amqp"]
            .iter()
            .all(|s| metric(&text, s, "decided") == 1 && metric(&text, s, "dead_lettered") == 1);
        if settled {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the binary did not settle the messages: {text}"
        );
        // Real time: a real process consuming real brokers.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let dead = nats.dead_letters().await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].1, "SIGNAL_INVALID", "{dead:?}");
    assert_eq!(amqp.dead_letters().await.len(), 1);

    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "SIGTERM did not end the host within 10 s"
        );
        // Real time: a real process and its signals.
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "exit {status}");
    nats.delete().await;
    amqp.delete().await;
}

#[test]
fn a_dead_letter_subject_the_stream_would_consume_stops_the_start() {
    let data = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mmm-host"))
        .args(["--listen", "127.0.0.1:0", "--log-format", "text"])
        .arg("--data-dir")
        .arg(data.path())
        .args(["--nats-url", "nats://127.0.0.1:1"])
        .args(["--nats-dlq-subject", "mmm.signals.dead"])
        .env_remove("MMM_DATABASE_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--nats-dlq-subject"), "{stderr}");
}
