//! The pidbox over kombu's Redis transport: a fanout exchange is a pub/sub
//! channel `/<db>.<exchange>`, a direct exchange a set of bindings
//! `_kombu.binding.<exchange>` naming lists, and each message a JSON
//! envelope whose body is base64.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::{CONTROL_EXCHANGE, REPLY_EXCHANGE, Reply};
use crate::probe::ProbeError;
use crate::probes::timeout::Limit;
use crate::probes::{redis_connect, redis_step};
use crate::redis_client::RedisTarget;

/// kombu's separator inside a binding: `routing_key SEP pattern SEP queue`.
const SEP: &str = "\x06\x16";
/// How long past its deadline a BRPOP may take to answer.
const GRACE: Duration = Duration::from_secs(1);
/// How long removing the reply binding may take.
const CLEANUP: Duration = Duration::from_secs(1);

pub(super) struct RedisMailbox {
    connection: MultiplexedConnection,
    db: i64,
    reply_id: String,
    reply_list: String,
    binding: String,
    binding_key: String,
    delivery_tag: u64,
    /// What the TLS handshake showed of the broker, over `rediss://`.
    pub(super) peer: Option<crate::tls::PeerTls>,
}

impl RedisMailbox {
    /// Connects and registers the reply binding, so that workers' replies
    /// to `reply_id` land in the list this mailbox pops.
    pub(super) async fn open(target: &RedisTarget, reply_id: &str, timeout: Duration) -> Result<Self, ProbeError> {
        // Commands are bounded one by one below; BRPOP must be allowed to block.
        let config = AsyncConnectionConfig::new().set_response_timeout(None);
        let deadline = Instant::now() + timeout;
        let (connection, peer) = redis_connect(Limit::until(deadline, timeout), target, timeout, config).await?;
        let db = target.db();
        let reply_list = format!("{reply_id}.{REPLY_EXCHANGE}");
        let mut mailbox = Self {
            connection,
            db,
            reply_id: reply_id.to_owned(),
            binding: format!("{reply_id}{SEP}{SEP}{reply_list}"),
            binding_key: format!("_kombu.binding.{REPLY_EXCHANGE}"),
            reply_list,
            delivery_tag: 0,
            peer,
        };
        let mut add = redis::cmd("SADD");
        add.arg(&mailbox.binding_key).arg(&mailbox.binding);
        redis_step(
            Limit::until(deadline, timeout),
            "SADD binding",
            add.query_async::<i64>(&mut mailbox.connection),
        )
        .await?;
        Ok(mailbox)
    }

    /// Publishes `body` to the control exchange; returns how many workers
    /// are subscribed to it (PUBLISH counts the receivers).
    pub(super) async fn publish(
        &mut self,
        body: &Value,
        headers: Value,
        deadline: Instant,
    ) -> Result<usize, ProbeError> {
        self.delivery_tag += 1;
        let payload = serde_json::to_vec(body).map_err(|e| ProbeError::msg(e.to_string()))?;
        let envelope = json!({
            "body": STANDARD.encode(payload),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": headers,
            "properties": {
                "delivery_mode": 1,
                "delivery_info": {"exchange": CONTROL_EXCHANGE, "routing_key": ""},
                "priority": 0,
                "body_encoding": "base64",
                "delivery_tag": format!("{}-{}", self.reply_id, self.delivery_tag),
            },
        });
        let channel = format!("/{}.{CONTROL_EXCHANGE}", self.db);
        let mut publish = redis::cmd("PUBLISH");
        publish.arg(channel).arg(envelope.to_string());
        let receivers = redis_step(
            Limit::by(deadline),
            "PUBLISH",
            publish.query_async::<i64>(&mut self.connection),
        )
        .await?;
        Ok(usize::try_from(receivers).unwrap_or(0))
    }

    /// The next reply, or `None` once `deadline` passes.
    pub(super) async fn next_reply(&mut self, deadline: Instant) -> Result<Option<Reply>, ProbeError> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            // BRPOP 0 would block forever.
            if left < Duration::from_millis(5) {
                return Ok(None);
            }
            let mut pop = redis::cmd("BRPOP");
            pop.arg(&self.reply_list).arg(left.as_secs_f64());
            let pop = pop.query_async::<Option<(String, Vec<u8>)>>(&mut self.connection);
            let grace = deadline + GRACE;
            let Some((_, raw)) = redis_step(Limit::by(grace), "BRPOP", pop).await? else {
                return Ok(None);
            };
            if let Some(reply) = decode(&raw) {
                return Ok(Some(reply));
            }
            tracing::debug!("ignoring an undecodable celery reply");
        }
    }

    /// Removes the binding and whatever replies came too late.
    pub(super) async fn close(mut self) {
        let mut cleanup = redis::pipe();
        cleanup
            .cmd("SREM")
            .arg(&self.binding_key)
            .arg(&self.binding)
            .ignore()
            .cmd("DEL")
            .arg(&self.reply_list)
            .ignore();
        if let Err(error) = redis_step(CLEANUP, "cleanup", cleanup.query_async::<()>(&mut self.connection)).await {
            tracing::debug!(%error, "celery reply binding cleanup failed");
        }
    }
}

/// A kombu envelope → the reply's ticket and its JSON body.
fn decode(raw: &[u8]) -> Option<Reply> {
    let envelope: Value = serde_json::from_slice(raw).ok()?;
    let body = envelope.get("body")?.as_str()?;
    let encoding = envelope.pointer("/properties/body_encoding").and_then(Value::as_str);
    let bytes = match encoding {
        Some("base64") => STANDARD.decode(body).ok()?,
        _ => body.as_bytes().to_vec(),
    };
    let ticket = envelope
        .pointer("/headers/ticket")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Some(Reply {
        ticket,
        body: serde_json::from_slice(&bytes).ok()?,
    })
}

pub(super) fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use serde_json::json;

    use super::{STANDARD, decode};

    #[test]
    fn decodes_a_kombu_envelope() {
        let body = STANDARD.encode(br#"{"w1@host": {"ok": "pong"}}"#);
        let raw = json!({
            "body": body,
            "headers": {"ticket": "t-1", "clock": 3},
            "properties": {"body_encoding": "base64"},
        })
        .to_string();
        let reply = decode(raw.as_bytes()).unwrap();
        assert_eq!(reply.ticket.as_deref(), Some("t-1"));
        assert_eq!(reply.body, json!({"w1@host": {"ok": "pong"}}));
        assert!(decode(b"not json").is_none());
    }
}
