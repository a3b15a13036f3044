//! NATS JetStream intake (async-nats): a pull consumer, durable and shared by replicas,
//! on the signals stream; dead letters published to a subject outside the stream's, kept
//! by a stream of their own.

use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, consumer::AckPolicy, AckKind};
use async_trait::async_trait;
use futures_util::StreamExt as _;

use super::{
    Connect, IntakeError, Message, Settle, Source, ERROR_CODE_HEADER, ERROR_HEADER,
    TRACEPARENT_HEADER,
};

/// Where and how to consume.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// `nats://…`.
    pub url: String,
    /// The signals stream (created when absent).
    pub stream: String,
    /// Its subjects.
    pub subjects: Vec<String>,
    /// The durable consumer.
    pub consumer: String,
    /// The dead letters' subject (must be outside `subjects`).
    pub dlq_subject: String,
    /// The stream keeping the dead letters (created when absent).
    pub dlq_stream: String,
    /// Messages pulled per batch and unacknowledged at most.
    pub prefetch: u16,
    /// How long the server waits for an ack before delivering again.
    pub ack_wait: Duration,
}

impl NatsConfig {
    /// The configuration `--nats-url` and its companions give, when it is set.
    ///
    /// # Errors
    /// A message naming the flag at fault.
    pub fn from_args(args: &crate::config::ServeArgs) -> Result<Option<NatsConfig>, String> {
        let Some(url) = &args.nats_url else {
            return Ok(None);
        };
        let subjects: Vec<String> = args
            .nats_subjects
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let config = NatsConfig {
            url: url.clone(),
            stream: args.nats_stream.clone(),
            subjects,
            consumer: args.nats_consumer.clone(),
            dlq_subject: args.nats_dlq_subject.clone(),
            dlq_stream: args.nats_dlq_stream.clone(),
            prefetch: args.intake_prefetch,
            ack_wait: Duration::from_secs(args.nats_ack_wait_seconds.max(1)),
        };
        config.check()?;
        Ok(Some(config))
    }

    /// Refuses names NATS would refuse, and a dead-letter subject the stream would consume.
    ///
    /// # Errors
    /// A message naming the flag at fault.
    pub fn check(&self) -> Result<(), String> {
        let name_ok = |n: &str| {
            !n.is_empty()
                && !n
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '.' | '*' | '>'))
        };
        if !name_ok(&self.stream) {
            return Err(format!(
                "--nats-stream `{}` is not a stream name",
                self.stream
            ));
        }
        if !name_ok(&self.dlq_stream) || self.dlq_stream == self.stream {
            return Err(format!(
                "--nats-dlq-stream `{}` is not a stream name distinct from --nats-stream",
                self.dlq_stream
            ));
        }
        if !name_ok(&self.consumer) {
            return Err(format!(
                "--nats-consumer `{}` is not a consumer name",
                self.consumer
            ));
        }
        if self.subjects.is_empty() {
            return Err("--nats-subjects names no subject".to_owned());
        }
        if self.dlq_subject.is_empty()
            || self.dlq_subject.contains(['*', '>'])
            || self
                .subjects
                .iter()
                .any(|s| subject_matches(s, &self.dlq_subject))
        {
            return Err(format!(
                "--nats-dlq-subject `{}` must be one subject outside --nats-subjects (a dead letter must never be consumed again as a signal)",
                self.dlq_subject
            ));
        }
        Ok(())
    }
}

/// Whether the subject `subject` matches the filter `filter` (`*` one token, `>` the
/// rest).
fn subject_matches(filter: &str, subject: &str) -> bool {
    let mut f = filter.split('.');
    let mut s = subject.split('.');
    loop {
        match (f.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Connects to NATS and consumes.
#[derive(Debug, Clone)]
pub struct NatsConnect {
    config: NatsConfig,
}

impl NatsConnect {
    /// A connector for `config`.
    pub fn new(config: NatsConfig) -> Self {
        NatsConnect { config }
    }
}

/// Creates the signals and dead-letters streams when absent (a stream that exists keeps
/// its configuration), and returns the JetStream context.
///
/// # Errors
/// NATS unreachable, JetStream off, or a stream that cannot be created.
pub async fn ensure_streams(config: &NatsConfig) -> Result<jetstream::Context, IntakeError> {
    let client = async_nats::ConnectOptions::new()
        .name("mmm-host")
        .connection_timeout(Duration::from_secs(5))
        .connect(config.url.as_str())
        .await
        .map_err(|e| IntakeError::new("connecting to NATS", e))?;
    let js = jetstream::new(client);
    js.get_or_create_stream(jetstream::stream::Config {
        name: config.stream.clone(),
        subjects: config.subjects.clone(),
        storage: jetstream::stream::StorageType::File,
        ..Default::default()
    })
    .await
    .map_err(|e| IntakeError::new(&format!("creating the stream `{}`", config.stream), e))?;
    js.get_or_create_stream(jetstream::stream::Config {
        name: config.dlq_stream.clone(),
        subjects: vec![config.dlq_subject.clone()],
        storage: jetstream::stream::StorageType::File,
        ..Default::default()
    })
    .await
    .map_err(|e| IntakeError::new(&format!("creating the stream `{}`", config.dlq_stream), e))?;
    Ok(js)
}

#[async_trait]
impl Connect for NatsConnect {
    fn name(&self) -> &'static str {
        "nats"
    }

    async fn connect(&self) -> Result<Box<dyn Source>, IntakeError> {
        let c = &self.config;
        let js = ensure_streams(c).await?;
        let stream = js
            .get_stream(&c.stream)
            .await
            .map_err(|e| IntakeError::new(&format!("opening the stream `{}`", c.stream), e))?;
        let consumer: jetstream::consumer::PullConsumer = stream
            .get_or_create_consumer(
                &c.consumer,
                pull::Config {
                    durable_name: Some(c.consumer.clone()),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: c.ack_wait,
                    max_ack_pending: i64::from(c.prefetch),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| IntakeError::new(&format!("creating the consumer `{}`", c.consumer), e))?;
        let messages = consumer
            .stream()
            .max_messages_per_batch(usize::from(c.prefetch))
            .messages()
            .await
            .map_err(|e| IntakeError::new("pulling from the consumer", e))?;
        Ok(Box::new(NatsSource {
            js,
            messages: Some(messages),
            dlq_subject: c.dlq_subject.clone(),
        }))
    }
}

struct NatsSource {
    js: jetstream::Context,
    messages: Option<pull::Stream>,
    dlq_subject: String,
}

#[async_trait]
impl Source for NatsSource {
    async fn next(&mut self) -> Result<Message, IntakeError> {
        let Some(messages) = self.messages.as_mut() else {
            return Err(IntakeError("the NATS intake is stopped".to_owned()));
        };
        let message = match messages.next().await {
            Some(Ok(m)) => m,
            Some(Err(e)) => return Err(IntakeError::new("pulling from NATS", e)),
            None => return Err(IntakeError("the NATS consumer ended".to_owned())),
        };
        let traceparent = message
            .headers
            .as_ref()
            .and_then(|h| h.get(TRACEPARENT_HEADER))
            .map(|v| v.as_str().to_owned());
        Ok(Message {
            body: message.payload.to_vec(),
            traceparent,
            settle: Box::new(NatsSettle {
                message,
                js: self.js.clone(),
                dlq_subject: self.dlq_subject.clone(),
            }),
        })
    }

    async fn stop(&mut self) {
        // No more pull requests; what was pulled and not settled is delivered again after
        // the ack wait.
        self.messages = None;
    }

    async fn close(self: Box<Self>) {
        drop(self);
    }
}

struct NatsSettle {
    message: jetstream::Message,
    js: jetstream::Context,
    dlq_subject: String,
}

/// A header value: one line, control characters replaced.
fn header_value(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[async_trait]
impl Settle for NatsSettle {
    async fn ack(self: Box<Self>) -> Result<(), IntakeError> {
        self.message
            .double_ack()
            .await
            .map_err(|e| IntakeError::new("acknowledging to NATS", e))
    }

    async fn retry(self: Box<Self>, after: Duration) -> Result<(), IntakeError> {
        self.message
            .ack_with(AckKind::Nak(Some(after)))
            .await
            .map_err(|e| IntakeError::new("giving a message back to NATS", e))
    }

    async fn dead_letter(
        self: Box<Self>,
        body: &[u8],
        code: &str,
        message: &str,
    ) -> Result<(), IntakeError> {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(ERROR_HEADER, header_value(message).as_str());
        headers.insert(ERROR_CODE_HEADER, code);
        headers.insert("MMM-Original-Subject", self.message.subject.as_str());
        if let Ok(info) = self.message.info() {
            // JetStream drops a second publish with the same id (within its duplicate
            // window): a dead letter published again after a crash before the ack is
            // stored once.
            headers.insert(
                "Nats-Msg-Id",
                format!("{}:{}", info.stream, info.stream_sequence).as_str(),
            );
        }
        if let Some(tp) = self
            .message
            .headers
            .as_ref()
            .and_then(|h| h.get(TRACEPARENT_HEADER))
        {
            headers.insert(TRACEPARENT_HEADER, tp.as_str());
        }
        self.js
            .publish_with_headers(self.dlq_subject.clone(), headers, body.to_vec().into())
            .await
            .map_err(|e| IntakeError::new("publishing a dead letter", e))?
            .await
            .map_err(|e| IntakeError::new("publishing a dead letter", e))?;
        self.message
            .double_ack()
            .await
            .map_err(|e| IntakeError::new("acknowledging to NATS", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_match_as_nats_filters() {
        assert!(subject_matches("mmm.signals.>", "mmm.signals.acme"));
        assert!(subject_matches("mmm.signals.>", "mmm.signals.acme.pr"));
        assert!(!subject_matches("mmm.signals.>", "mmm.signals"));
        assert!(!subject_matches("mmm.signals.>", "mmm.dlq.signals"));
        assert!(subject_matches("mmm.*.signals", "mmm.dlq.signals"));
        assert!(subject_matches("a.b", "a.b"));
        assert!(!subject_matches("a.b", "a.b.c"));
    }

    fn config() -> NatsConfig {
        NatsConfig {
            url: "nats://127.0.0.1:4222".to_owned(),
            stream: "MMM_SIGNALS".to_owned(),
            subjects: vec!["mmm.signals.>".to_owned()],
            consumer: "mmm-host".to_owned(),
            dlq_subject: "mmm.dlq.signals".to_owned(),
            dlq_stream: "MMM_SIGNALS_DLQ".to_owned(),
            prefetch: 64,
            ack_wait: Duration::from_secs(30),
        }
    }

    #[test]
    fn a_dead_letter_subject_inside_the_stream_is_refused() {
        assert!(config().check().is_ok());
        let inside = NatsConfig {
            dlq_subject: "mmm.signals.dlq".to_owned(),
            ..config()
        };
        assert!(inside.check().unwrap_err().contains("--nats-dlq-subject"));
        let bad_stream = NatsConfig {
            stream: "a.b".to_owned(),
            ..config()
        };
        assert!(bad_stream.check().unwrap_err().contains("--nats-stream"));
        let same = NatsConfig {
            dlq_stream: "MMM_SIGNALS".to_owned(),
            ..config()
        };
        assert!(same.check().unwrap_err().contains("--nats-dlq-stream"));
    }

    #[test]
    fn header_values_are_one_line() {
        assert_eq!(header_value("a\nb\tc"), "a b c");
    }
}
