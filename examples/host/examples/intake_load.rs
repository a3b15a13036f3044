//! The broker side of `benches/host/redelivery.sh`: queues signals (a known share of them
//! malformed) on NATS JetStream or RabbitMQ, reports what waits and what reached the dead
//! letters, and deletes the streams and queues afterwards. Names are the host's flags'.
//!
//! ```text
//! intake_load nats-publish  URL STREAM SUBJECTS SUBJECT DLQ_SUBJECT DLQ_STREAM TENANT PREFIX COUNT EVERY
//! intake_load amqp-publish  URL QUEUE DLQ_QUEUE TENANT PREFIX COUNT EVERY
//! intake_load nats-pending  URL STREAM CONSUMER      # messages not yet acked (stream's when no consumer)
//! intake_load amqp-pending  URL QUEUE                # messages ready in the queue
//! intake_load nats-dlq      URL DLQ_STREAM           # dead letters: total, distinct, foreign
//! intake_load amqp-dlq      URL DLQ_QUEUE            # takes them: total, distinct, foreign
//! intake_load nats-delete   URL STREAM DLQ_STREAM
//! intake_load amqp-delete   URL QUEUE DLQ_QUEUE
//! ```
//!
//! Message `i` (0-based) is malformed when `i % EVERY == EVERY - 1`: alternately not JSON
//! and an envelope with a field intake messages do not have; each names `PREFIX-bad-i`.
//! Valid ones are signals with `signal_id` `PREFIX-i`.

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::time::Duration;

use async_nats::jetstream;
use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::BasicProperties;
use mmm_host::intake::amqp::{self, AmqpConfig};
use mmm_host::intake::nats::{self, NatsConfig};
use serde_json::json;

type Res<T> = Result<T, String>;

fn arg(args: &[String], i: usize, what: &str) -> Res<String> {
    args.get(i)
        .cloned()
        .ok_or_else(|| format!("missing {what}"))
}

fn number(args: &[String], i: usize, what: &str) -> Res<usize> {
    arg(args, i, what)?
        .parse()
        .map_err(|e| format!("{what}: {e}"))
}

/// The body of message `i`.
fn body(tenant: &str, prefix: &str, i: usize, every: usize) -> Vec<u8> {
    if every > 0 && i % every == every - 1 {
        if (i / every).is_multiple_of(2) {
            return format!("not json {prefix}-bad-{i}").into_bytes();
        }
        return json!({"signal": {"tenant_id": tenant}, "bogus": format!("{prefix}-bad-{i}")})
            .to_string()
            .into_bytes();
    }
    json!({"signal": {
        "signal_id": format!("{prefix}-{i}"), "tenant_id": tenant,
        "actor_id": format!("dev-{}", i % 97), "kind": "pr.opened", "source": "scm",
        "occurred_at": "2026-11-24T10:00:00Z", "surface": "pr_comment",
        "repo": {"id": format!("{tenant}/api"), "branch": "feat/x"},
        "payload": {"lines_changed": 420, "files_changed": 12}}})
    .to_string()
    .into_bytes()
}

fn nats_config(url: String, stream: String, subjects: String, dlq: (String, String)) -> NatsConfig {
    NatsConfig {
        url,
        stream,
        subjects: vec![subjects],
        consumer: "unused".to_owned(),
        dlq_subject: dlq.0,
        dlq_stream: dlq.1,
        prefetch: 64,
        ack_wait: Duration::from_secs(30),
    }
}

async fn js(url: &str) -> Res<jetstream::Context> {
    let client = async_nats::connect(url).await.map_err(|e| e.to_string())?;
    Ok(jetstream::new(client))
}

async fn amqp_channel(url: &str) -> Res<(lapin::Connection, lapin::Channel)> {
    let connection = lapin::Connection::connect(url, lapin::ConnectionProperties::default())
        .await
        .map_err(|e| e.to_string())?;
    let channel = connection
        .create_channel()
        .await
        .map_err(|e| e.to_string())?;
    Ok((connection, channel))
}

/// Prints the dead letters' figures: total, distinct bodies, and bodies that are not
/// malformed messages of this run.
fn report(bodies: &[Vec<u8>]) {
    let distinct: BTreeSet<&Vec<u8>> = bodies.iter().collect();
    let foreign = distinct
        .iter()
        .filter(|b| !String::from_utf8_lossy(b).contains("-bad-"))
        .count();
    println!(
        "total={} distinct={} foreign={foreign}",
        bodies.len(),
        distinct.len()
    );
}

async fn run(args: Vec<String>) -> Res<()> {
    let command = arg(&args, 1, "a command")?;
    let url = arg(&args, 2, "URL")?;
    match command.as_str() {
        "nats-publish" => {
            let config = nats_config(
                url,
                arg(&args, 3, "STREAM")?,
                arg(&args, 4, "SUBJECTS")?,
                (arg(&args, 6, "DLQ_SUBJECT")?, arg(&args, 7, "DLQ_STREAM")?),
            );
            config.check()?;
            let subject = arg(&args, 5, "SUBJECT")?;
            let (tenant, prefix) = (arg(&args, 8, "TENANT")?, arg(&args, 9, "PREFIX")?);
            let (count, every) = (number(&args, 10, "COUNT")?, number(&args, 11, "EVERY")?);
            let js = nats::ensure_streams(&config)
                .await
                .map_err(|e| e.to_string())?;
            // Publish acks awaited in windows of 256, so the stream has every message.
            let mut acks = Vec::new();
            for i in 0..count {
                let ack = js
                    .publish(subject.clone(), body(&tenant, &prefix, i, every).into())
                    .await
                    .map_err(|e| e.to_string())?;
                acks.push(ack);
                if acks.len() == 256 || i + 1 == count {
                    for ack in acks.drain(..) {
                        ack.await.map_err(|e| e.to_string())?;
                    }
                }
            }
        }
        "amqp-publish" => {
            let config = AmqpConfig {
                url,
                queue: arg(&args, 3, "QUEUE")?,
                dlq_queue: arg(&args, 4, "DLQ_QUEUE")?,
                prefetch: 64,
            };
            config.check()?;
            let (tenant, prefix) = (arg(&args, 5, "TENANT")?, arg(&args, 6, "PREFIX")?);
            let (count, every) = (number(&args, 7, "COUNT")?, number(&args, 8, "EVERY")?);
            let (connection, channel) = amqp::ensure_queues(&config)
                .await
                .map_err(|e| e.to_string())?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await
                .map_err(|e| e.to_string())?;
            for i in 0..count {
                channel
                    .basic_publish(
                        "".into(),
                        config.queue.as_str().into(),
                        BasicPublishOptions::default(),
                        &body(&tenant, &prefix, i, every),
                        BasicProperties::default().with_delivery_mode(2),
                    )
                    .await
                    .map_err(|e| e.to_string())?;
            }
            channel
                .wait_for_confirms()
                .await
                .map_err(|e| e.to_string())?;
            connection
                .close(200, "done".into())
                .await
                .map_err(|e| e.to_string())?;
        }
        "nats-pending" => {
            let js = js(&url).await?;
            let mut stream = js
                .get_stream(arg(&args, 3, "STREAM")?)
                .await
                .map_err(|e| e.to_string())?;
            let consumer: Result<jetstream::consumer::PullConsumer, _> =
                stream.get_consumer(&arg(&args, 4, "CONSUMER")?).await;
            let pending = match consumer {
                Ok(mut c) => {
                    let info = c.info().await.map_err(|e| e.to_string())?;
                    info.num_pending + info.num_ack_pending as u64
                }
                Err(_) => {
                    stream
                        .info()
                        .await
                        .map_err(|e| e.to_string())?
                        .state
                        .messages
                }
            };
            println!("{pending}");
        }
        "amqp-pending" => {
            let (connection, channel) = amqp_channel(&url).await?;
            let queue = channel
                .queue_declare(
                    arg(&args, 3, "QUEUE")?.as_str().into(),
                    QueueDeclareOptions {
                        passive: true,
                        ..QueueDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await
                .map_err(|e| e.to_string())?;
            println!("{}", queue.message_count());
            let _ = connection.close(200, "done".into()).await;
        }
        "nats-dlq" => {
            let js = js(&url).await?;
            let mut stream = js
                .get_stream(arg(&args, 3, "DLQ_STREAM")?)
                .await
                .map_err(|e| e.to_string())?;
            let info = stream.info().await.map_err(|e| e.to_string())?;
            let (first, last) = (info.state.first_sequence, info.state.last_sequence);
            let mut bodies = Vec::new();
            for seq in first..=last {
                if let Ok(m) = stream.get_raw_message(seq).await {
                    bodies.push(m.payload.to_vec());
                }
            }
            report(&bodies);
        }
        "amqp-dlq" => {
            let (connection, channel) = amqp_channel(&url).await?;
            let queue = arg(&args, 3, "DLQ_QUEUE")?;
            let mut bodies = Vec::new();
            while let Some(m) = channel
                .basic_get(queue.as_str().into(), BasicGetOptions::default())
                .await
                .map_err(|e| e.to_string())?
            {
                bodies.push(m.delivery.data.clone());
                m.delivery
                    .ack(BasicAckOptions::default())
                    .await
                    .map_err(|e| e.to_string())?;
            }
            report(&bodies);
            let _ = connection.close(200, "done".into()).await;
        }
        "nats-delete" => {
            let js = js(&url).await?;
            for stream in [arg(&args, 3, "STREAM")?, arg(&args, 4, "DLQ_STREAM")?] {
                let _ = js.delete_stream(&stream).await;
            }
        }
        "amqp-delete" => {
            let (connection, channel) = amqp_channel(&url).await?;
            for queue in [arg(&args, 3, "QUEUE")?, arg(&args, 4, "DLQ_QUEUE")?] {
                let _ = channel
                    .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                    .await;
            }
            let _ = connection.close(200, "done".into()).await;
        }
        other => return Err(format!("unknown command `{other}`")),
    }
    Ok(())
}

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("intake_load: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(std::env::args().collect())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("intake_load: {e}");
            ExitCode::FAILURE
        }
    }
}
