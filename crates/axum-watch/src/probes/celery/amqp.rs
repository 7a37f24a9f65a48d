//! The pidbox over AMQP: commands go to the fanout exchange `celery.pidbox`,
//! replies come back through the direct exchange `reply.celery.pidbox` to
//! an exclusive queue bound with a fresh routing key.

use std::time::Duration;

use futures_util::StreamExt as _;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, Consumer, ExchangeKind};
use serde_json::Value;
use tokio::time::Instant;

use super::{CONTROL_EXCHANGE, REPLY_EXCHANGE, Reply};
use crate::probe::ProbeError;
use crate::probes::amqp::{AmqpTarget, amqp_error};

pub(super) struct AmqpMailbox {
    connection: Connection,
    channel: lapin::Channel,
    consumer: Consumer,
}

impl AmqpMailbox {
    pub(super) async fn open(target: &AmqpTarget, reply_id: &str, timeout: Duration) -> Result<Self, ProbeError> {
        let deadline = Instant::now() + timeout;
        let connection = target.connect(timeout).await?;
        match Self::setup(connection, reply_id, deadline).await {
            Ok(mailbox) => Ok(mailbox),
            Err((connection, error)) => {
                let _ = tokio::time::timeout(Duration::from_secs(1), connection.close(200, "OK".into())).await;
                Err(error)
            }
        }
    }

    async fn setup(
        connection: Connection,
        reply_id: &str,
        deadline: Instant,
    ) -> Result<Self, (Connection, ProbeError)> {
        macro_rules! step {
            ($what:literal, $future:expr) => {
                match tokio::time::timeout_at(deadline, $future).await {
                    Ok(Ok(value)) => value,
                    Ok(Err(error)) => return Err((connection, amqp_error($what, &error))),
                    Err(_) => {
                        let error = ProbeError::with_kind("Timeout", concat!($what, " got no answer in time"));
                        return Err((connection, error));
                    }
                }
            };
        }
        let channel = step!("open channel", connection.create_channel());
        // Both exchanges exactly as kombu declares them (non-durable, not
        // auto-deleted); other flags would make the broker close the channel.
        let transient = ExchangeDeclareOptions {
            durable: false,
            auto_delete: false,
            ..ExchangeDeclareOptions::default()
        };
        step!(
            "declare the control exchange",
            channel.exchange_declare(
                CONTROL_EXCHANGE.into(),
                ExchangeKind::Fanout,
                transient,
                FieldTable::default()
            )
        );
        step!(
            "declare the reply exchange",
            channel.exchange_declare(
                REPLY_EXCHANGE.into(),
                ExchangeKind::Direct,
                transient,
                FieldTable::default()
            )
        );
        let queue = format!("{reply_id}.{REPLY_EXCHANGE}");
        let exclusive = QueueDeclareOptions {
            exclusive: true,
            auto_delete: true,
            ..QueueDeclareOptions::default()
        };
        step!(
            "declare the reply queue",
            channel.queue_declare(queue.as_str().into(), exclusive, FieldTable::default())
        );
        step!(
            "bind the reply queue",
            channel.queue_bind(
                queue.as_str().into(),
                REPLY_EXCHANGE.into(),
                reply_id.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
        );
        let no_ack = BasicConsumeOptions {
            no_ack: true,
            ..BasicConsumeOptions::default()
        };
        let consumer = step!(
            "consume the reply queue",
            channel.basic_consume(queue.as_str().into(), "".into(), no_ack, FieldTable::default())
        );
        Ok(Self {
            connection,
            channel,
            consumer,
        })
    }

    /// Publishes `body` to the control exchange. AMQP does not say how many
    /// queues got it, so the count is unknown.
    pub(super) async fn publish(
        &mut self,
        body: &Value,
        clock: i64,
        expires: f64,
        deadline: Instant,
    ) -> Result<Option<usize>, ProbeError> {
        let payload = serde_json::to_vec(body).map_err(|e| ProbeError::msg(e.to_string()))?;
        let mut headers = FieldTable::default();
        headers.insert("clock".into(), AMQPValue::LongLongInt(clock));
        headers.insert("expires".into(), AMQPValue::Double(expires));
        let properties = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_content_encoding("utf-8".into())
            .with_delivery_mode(1)
            .with_headers(headers);
        let publish = self.channel.basic_publish(
            CONTROL_EXCHANGE.into(),
            "".into(),
            BasicPublishOptions::default(),
            &payload,
            properties,
        );
        match tokio::time::timeout_at(deadline, publish).await {
            Ok(Ok(_confirm)) => Ok(None),
            Ok(Err(error)) => Err(amqp_error("publish to celery.pidbox", &error)),
            Err(_) => Err(ProbeError::with_kind(
                "Timeout",
                "publish to celery.pidbox got no answer in time",
            )),
        }
    }

    /// The next reply, or `None` once `deadline` passes.
    pub(super) async fn next_reply(&mut self, deadline: Instant) -> Result<Option<Reply>, ProbeError> {
        loop {
            let delivery = match tokio::time::timeout_at(deadline, self.consumer.next()).await {
                Err(_) | Ok(None) => return Ok(None),
                Ok(Some(Err(error))) => return Err(amqp_error("receive a reply", &error)),
                Ok(Some(Ok(delivery))) => delivery,
            };
            let ticket = delivery
                .properties
                .headers()
                .as_ref()
                .and_then(|h| h.inner().get("ticket"))
                .and_then(|v| match v {
                    AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
                    AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
                    _ => None,
                });
            match serde_json::from_slice(&delivery.data) {
                Ok(body) => return Ok(Some(Reply { ticket, body })),
                Err(error) => tracing::debug!(%error, "ignoring an undecodable celery reply"),
            }
        }
    }

    pub(super) async fn close(self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.channel.close(200, "OK".into())).await;
        let _ = tokio::time::timeout(Duration::from_secs(1), self.connection.close(200, "OK".into())).await;
    }
}
