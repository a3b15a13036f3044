//! RabbitMQ intake (lapin): a consumer on the signals queue with a bounded prefetch;
//! dead letters published, with publisher confirms, to their own queue.

use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt as _;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    BasicRejectOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

use super::{
    Connect, IntakeError, Message, Settle, Source, ERROR_CODE_HEADER, ERROR_HEADER,
    TRACEPARENT_HEADER,
};

/// Where and how to consume.
#[derive(Debug, Clone)]
pub struct AmqpConfig {
    /// `amqp://…` (or `amqps://…`).
    pub url: String,
    /// The signals queue (declared durable when absent).
    pub queue: String,
    /// The dead letters' queue (declared durable when absent).
    pub dlq_queue: String,
    /// Messages delivered before their acks, at most.
    pub prefetch: u16,
}

impl AmqpConfig {
    /// The configuration `--amqp-url` and its companions give, when it is set.
    ///
    /// # Errors
    /// A message naming the flag at fault.
    pub fn from_args(args: &crate::config::ServeArgs) -> Result<Option<AmqpConfig>, String> {
        let Some(url) = &args.amqp_url else {
            return Ok(None);
        };
        let config = AmqpConfig {
            url: url.clone(),
            queue: args.amqp_queue.clone(),
            dlq_queue: args.amqp_dlq_queue.clone(),
            prefetch: args.intake_prefetch,
        };
        config.check()?;
        Ok(Some(config))
    }

    /// Refuses queue names AMQP cannot carry (empty, or over 255 bytes) and a dead-letter
    /// queue that is the signals queue.
    ///
    /// # Errors
    /// A message naming the flag at fault.
    pub fn check(&self) -> Result<(), String> {
        let ok = |q: &str| !q.is_empty() && q.len() <= 255 && !q.chars().any(char::is_control);
        if !ok(&self.queue) {
            return Err(format!(
                "--amqp-queue `{}` is not a queue name (1 to 255 bytes)",
                self.queue
            ));
        }
        if !ok(&self.dlq_queue) || self.dlq_queue == self.queue {
            return Err(format!(
                "--amqp-dlq-queue `{}` is not a queue name distinct from --amqp-queue",
                self.dlq_queue
            ));
        }
        Ok(())
    }
}

/// A checked queue name as AMQP carries it.
fn short(name: &str) -> Result<ShortString, IntakeError> {
    ShortString::try_new(name).map_err(|e| IntakeError::new(&format!("queue `{name}`"), e))
}

/// Connects to RabbitMQ and consumes.
#[derive(Debug, Clone)]
pub struct AmqpConnect {
    config: AmqpConfig,
}

impl AmqpConnect {
    /// A connector for `config`.
    pub fn new(config: AmqpConfig) -> Self {
        AmqpConnect { config }
    }
}

/// Connects and declares the signals and dead-letters queues, durable (idempotent; a
/// queue that exists with other arguments is an error RabbitMQ names).
///
/// # Errors
/// RabbitMQ unreachable, or a queue that cannot be declared.
pub async fn ensure_queues(config: &AmqpConfig) -> Result<(Connection, Channel), IntakeError> {
    let connection = Connection::connect(&config.url, ConnectionProperties::default())
        .await
        .map_err(|e| IntakeError::new("connecting to RabbitMQ", e))?;
    let channel = connection
        .create_channel()
        .await
        .map_err(|e| IntakeError::new("opening a RabbitMQ channel", e))?;
    for queue in [&config.queue, &config.dlq_queue] {
        channel
            .queue_declare(
                short(queue)?,
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|e| IntakeError::new(&format!("declaring the queue `{queue}`"), e))?;
    }
    Ok((connection, channel))
}

#[async_trait]
impl Connect for AmqpConnect {
    fn name(&self) -> &'static str {
        "amqp"
    }

    async fn connect(&self) -> Result<Box<dyn Source>, IntakeError> {
        let c = &self.config;
        let (connection, consume) = ensure_queues(c).await?;
        consume
            .basic_qos(c.prefetch, BasicQosOptions::default())
            .await
            .map_err(|e| IntakeError::new("setting the RabbitMQ prefetch", e))?;
        let publish = connection
            .create_channel()
            .await
            .map_err(|e| IntakeError::new("opening a RabbitMQ channel", e))?;
        publish
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| IntakeError::new("turning on publisher confirms", e))?;
        let tag = format!("mmm-host-{}", uuid::Uuid::now_v7());
        let consumer = consume
            .basic_consume(
                short(&c.queue)?,
                short(&tag)?,
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| IntakeError::new(&format!("consuming from `{}`", c.queue), e))?;
        Ok(Box::new(AmqpSource {
            connection,
            consume,
            publish,
            consumer: Some(consumer),
            tag,
            dlq_queue: c.dlq_queue.clone(),
        }))
    }
}

struct AmqpSource {
    connection: Connection,
    consume: Channel,
    publish: Channel,
    consumer: Option<lapin::Consumer>,
    tag: String,
    dlq_queue: String,
}

/// A header's text, when the message has it as a string.
fn header_text(properties: &BasicProperties, name: &str) -> Option<String> {
    let table = properties.headers().as_ref()?;
    match table.inner().get(name)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

#[async_trait]
impl Source for AmqpSource {
    async fn next(&mut self) -> Result<Message, IntakeError> {
        let Some(consumer) = self.consumer.as_mut() else {
            return Err(IntakeError("the RabbitMQ intake is stopped".to_owned()));
        };
        let mut delivery = match consumer.next().await {
            Some(Ok(d)) => d,
            Some(Err(e)) => return Err(IntakeError::new("consuming from RabbitMQ", e)),
            None => return Err(IntakeError("the RabbitMQ consumer ended".to_owned())),
        };
        let traceparent = header_text(&delivery.properties, TRACEPARENT_HEADER);
        let body = std::mem::take(&mut delivery.data);
        Ok(Message {
            body,
            traceparent,
            settle: Box::new(AmqpSettle {
                delivery,
                publish: self.publish.clone(),
                dlq_queue: self.dlq_queue.clone(),
            }),
        })
    }

    async fn stop(&mut self) {
        if let Ok(tag) = short(&self.tag) {
            if let Err(e) = self
                .consume
                .basic_cancel(tag, BasicCancelOptions::default())
                .await
            {
                tracing::warn!(error = %e, "cancelling the RabbitMQ consumer failed");
            }
        }
        self.consumer = None;
    }

    async fn close(self: Box<Self>) {
        // Unacknowledged deliveries go back to the queue when the channel closes.
        if let Err(e) = self.connection.close(200, "mmm-host stopping".into()).await {
            tracing::debug!(error = %e, "closing the RabbitMQ connection");
        }
    }
}

struct AmqpSettle {
    /// The delivery (its body taken): it acks, rejects, and has the headers.
    delivery: lapin::message::Delivery,
    publish: Channel,
    dlq_queue: String,
}

#[async_trait]
impl Settle for AmqpSettle {
    async fn ack(self: Box<Self>) -> Result<(), IntakeError> {
        self.delivery
            .ack(BasicAckOptions::default())
            .await
            .map(|_| ())
            .map_err(|e| IntakeError::new("acknowledging to RabbitMQ", e))
    }

    async fn retry(self: Box<Self>, after: Duration) -> Result<(), IntakeError> {
        // Held (it keeps its prefetch slot) for the pause, then put back at the queue's
        // head: a queue whose messages all fail is not spun through at full speed.
        tokio::time::sleep(after).await;
        self.delivery
            .reject(BasicRejectOptions { requeue: true })
            .await
            .map(|_| ())
            .map_err(|e| IntakeError::new("giving a message back to RabbitMQ", e))
    }

    async fn dead_letter(
        self: Box<Self>,
        body: &[u8],
        code: &str,
        message: &str,
    ) -> Result<(), IntakeError> {
        let mut headers = FieldTable::default();
        headers.insert(ERROR_HEADER.into(), AMQPValue::LongString(message.into()));
        headers.insert(ERROR_CODE_HEADER.into(), AMQPValue::LongString(code.into()));
        if let Some(tp) = header_text(&self.delivery.properties, TRACEPARENT_HEADER) {
            headers.insert(TRACEPARENT_HEADER.into(), AMQPValue::LongString(tp.into()));
        }
        let mut properties = BasicProperties::default()
            .with_headers(headers)
            .with_delivery_mode(2);
        if let Some(id) = self.delivery.properties.message_id() {
            properties = properties.with_message_id(id.clone());
        }
        let confirm = self
            .publish
            .basic_publish(
                "".into(),
                short(&self.dlq_queue)?,
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                body,
                properties,
            )
            .await
            .map_err(|e| IntakeError::new("publishing a dead letter", e))?
            .await
            .map_err(|e| IntakeError::new("publishing a dead letter", e))?;
        if !confirm.is_ack() || confirm.take_message().is_some() {
            return Err(IntakeError(format!(
                "RabbitMQ did not take the dead letter (queue `{}`)",
                self.dlq_queue
            )));
        }
        self.delivery
            .ack(BasicAckOptions::default())
            .await
            .map(|_| ())
            .map_err(|e| IntakeError::new("acknowledging to RabbitMQ", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_are_checked() {
        let config = AmqpConfig {
            url: "amqp://127.0.0.1".to_owned(),
            queue: "mmm.signals".to_owned(),
            dlq_queue: "mmm.signals.dlq".to_owned(),
            prefetch: 64,
        };
        assert!(config.check().is_ok());
        let long = AmqpConfig {
            queue: "q".repeat(256),
            ..config.clone()
        };
        assert!(long.check().unwrap_err().contains("--amqp-queue"));
        let same = AmqpConfig {
            dlq_queue: "mmm.signals".to_owned(),
            ..config
        };
        assert!(same.check().unwrap_err().contains("--amqp-dlq-queue"));
    }
}
