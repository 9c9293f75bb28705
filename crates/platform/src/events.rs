//! Events: the transactional outbox, the relay that publishes it, and the bus.
//!
//! A service writes its events with [`record`] into its own `outbox` table in the same
//! transaction as the change they describe (its first migration creates the table). A
//! [`spawn_relay`] task per service publishes unpublished rows, oldest first, to the [`Bus`] and
//! then marks them published: at least once (a crash between the two publishes again), so
//! consumers use [`first_time`] (a `processed_events` table of their own) to handle each event
//! once. The bus is Redis Streams in production (one stream per topic, consumer groups, acks,
//! pending entries redelivered to a consumer that restarts) and an in-process broadcast in
//! `marquee up`.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use fred::prelude::{Client, ClientLike, StreamsInterface};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, QuerySelect, Schema, Set, TransactionTrait,
    sea_query::TableCreateStatement,
};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// The outbox table.
pub mod outbox {
    use sea_orm::entity::prelude::*;

    /// One event waiting to be (or already) published.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "outbox")]
    pub struct Model {
        /// Event id (UUIDv7).
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// Topic, for example `payment.captured`.
        pub topic: String,
        /// The entity the event is about.
        pub aggregate_id: String,
        /// JSON payload.
        #[sea_orm(column_type = "Text")]
        pub payload: String,
        /// When the change happened.
        pub created_at: ChronoDateTimeUtc,
        /// When the relay published it.
        pub published_at: Option<ChronoDateTimeUtc>,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The events a consumer has handled.
pub mod processed {
    use sea_orm::entity::prelude::*;

    /// One handled event.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "processed_events")]
    pub struct Model {
        /// The consumer, for example `booking.payments`.
        #[sea_orm(primary_key, auto_increment = false)]
        pub consumer: String,
        /// The event id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub event_id: String,
        /// When it was handled.
        pub handled_at: ChronoDateTimeUtc,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The `CREATE TABLE` of `outbox` as the entity is now: what the schema tests hold a service's
/// migrated table to (a migration writes its own SQL out, fixed).
pub fn create_outbox_table(backend: sea_orm::DbBackend) -> TableCreateStatement {
    Schema::new(backend)
        .create_table_from_entity(outbox::Entity)
        .if_not_exists()
        .to_owned()
}

/// The `CREATE TABLE` of `processed_events` as the entity is now (a consuming service's
/// migration writes it out, fixed).
pub fn create_processed_table(backend: sea_orm::DbBackend) -> TableCreateStatement {
    Schema::new(backend)
        .create_table_from_entity(processed::Entity)
        .if_not_exists()
        .to_owned()
}

/// Writes an event into the outbox, in the caller's transaction.
pub async fn record(
    conn: &impl ConnectionTrait,
    topic: &str,
    aggregate_id: &str,
    payload: &serde_json::Value,
) -> Result<String, DbErr> {
    let id = uuid::Uuid::now_v7().to_string();
    outbox::Entity::insert(outbox::ActiveModel {
        id: Set(id.clone()),
        topic: Set(topic.to_owned()),
        aggregate_id: Set(aggregate_id.to_owned()),
        payload: Set(payload.to_string()),
        created_at: Set(chrono::Utc::now()),
        published_at: Set(None),
    })
    .exec_without_returning(conn)
    .await?;
    Ok(id)
}

/// True the first time `consumer` sees `event_id` (recorded in the caller's transaction, so the
/// record and the handling commit together).
pub async fn first_time(
    conn: &impl ConnectionTrait,
    consumer: &str,
    event_id: &str,
) -> Result<bool, DbErr> {
    let row = processed::ActiveModel {
        consumer: Set(consumer.to_owned()),
        event_id: Set(event_id.to_owned()),
        handled_at: Set(chrono::Utc::now()),
    };
    match row.insert(conn).await {
        Ok(_) => Ok(true),
        Err(e) if crate::db::is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// An event on the bus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Event id; the same on every delivery.
    pub id: String,
    /// Topic.
    pub topic: String,
    /// The entity it is about.
    pub aggregate_id: String,
    /// JSON payload.
    pub payload: String,
    /// Unix milliseconds of the change.
    pub occurred_at_ms: i64,
}

/// Why the bus failed.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// Redis failed.
    #[error("redis: {0}")]
    Redis(#[from] fred::error::Error),
    /// The in-process bus dropped events for a slow subscriber.
    #[error("subscriber lagged and missed {0} events")]
    Lagged(u64),
    /// The bus is closed.
    #[error("bus closed")]
    Closed,
}

/// Where events travel.
#[derive(Clone)]
pub enum Bus {
    /// Broadcast within the process (`marquee up`).
    InProcess(Arc<Mutex<HashMap<String, broadcast::Sender<Event>>>>),
    /// Redis Streams: one stream per topic under `prefix`.
    Redis {
        /// The client used to publish.
        client: Client,
        /// Key prefix.
        prefix: String,
    },
}

/// Most entries kept per stream (approximately).
const STREAM_MAX_LEN: i64 = 1_000_000;

impl Bus {
    /// An in-process bus.
    pub fn in_process() -> Self {
        Bus::InProcess(Arc::new(Mutex::new(HashMap::new())))
    }

    /// A Redis Streams bus.
    pub fn redis(client: Client, prefix: &str) -> Self {
        Bus::Redis {
            client,
            prefix: prefix.to_owned(),
        }
    }

    fn stream(prefix: &str, topic: &str) -> String {
        format!("{prefix}events:{topic}")
    }

    fn sender(
        map: &Mutex<HashMap<String, broadcast::Sender<Event>>>,
        topic: &str,
    ) -> broadcast::Sender<Event> {
        let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(topic.to_owned())
            .or_insert_with(|| broadcast::channel(4096).0)
            .clone()
    }

    /// Publishes one event.
    pub async fn publish(&self, event: &Event) -> Result<(), BusError> {
        match self {
            Bus::InProcess(map) => {
                // No subscriber is not an error: nobody listens to that topic in this process.
                let _ = Self::sender(map, &event.topic).send(event.clone());
                Ok(())
            }
            Bus::Redis { client, prefix } => {
                let _: String = client
                    .xadd(
                        Self::stream(prefix, &event.topic),
                        false,
                        ("MAXLEN", "~", STREAM_MAX_LEN),
                        "*",
                        vec![
                            ("id", event.id.clone()),
                            ("aggregate_id", event.aggregate_id.clone()),
                            ("payload", event.payload.clone()),
                            ("occurred_at_ms", event.occurred_at_ms.to_string()),
                        ],
                    )
                    .await?;
                Ok(())
            }
        }
    }

    /// Subscribes `consumer` of consumer group `group` to `topic`. On Redis the group is created
    /// at the start of the stream when missing, and the consumer first gets the entries it was
    /// given before and did not acknowledge.
    pub async fn subscribe(
        &self,
        topic: &str,
        group: &str,
        consumer: &str,
    ) -> Result<Subscription, BusError> {
        match self {
            Bus::InProcess(map) => Ok(Subscription::Local(Self::sender(map, topic).subscribe())),
            Bus::Redis { client, prefix } => {
                // Blocking reads get a connection of their own.
                let reader = client.clone_new();
                reader.init().await?;
                let key = Self::stream(prefix, topic);
                let created: Result<String, _> = reader.xgroup_create(&key, group, "0", true).await;
                if let Err(e) = created
                    && !e.details().contains("BUSYGROUP")
                {
                    return Err(e.into());
                }
                Ok(Subscription::Redis {
                    reader,
                    key,
                    topic: topic.to_owned(),
                    group: group.to_owned(),
                    consumer: consumer.to_owned(),
                    buffer: VecDeque::new(),
                    pending_done: false,
                })
            }
        }
    }

    /// Follows `topic` from now on: every event published after this returns, to every tail
    /// (no consumer group, nothing to acknowledge): a process's own view of what every instance
    /// publishes. Nothing is redelivered, so it suits consumers for which a missed event costs
    /// only latency (an in-process tail that lags gets [`BusError::Lagged`] and goes on after
    /// the events it missed).
    pub async fn tail(&self, topic: &str) -> Result<Tail, BusError> {
        match self {
            Bus::InProcess(map) => Ok(Tail::Local(Self::sender(map, topic).subscribe())),
            Bus::Redis { client, prefix } => {
                // Blocking reads get a connection of their own.
                let reader = client.clone_new();
                reader.init().await?;
                let key = Self::stream(prefix, topic);
                // The stream's last entry now: what follows it is "from now on". An empty or
                // missing stream starts at its beginning.
                let last: Entries = reader.xrevrange(&key, "+", "-", Some(1)).await?;
                let after = last
                    .into_iter()
                    .next()
                    .map_or_else(|| "0-0".to_owned(), |(id, _)| id);
                Ok(Tail::Redis {
                    reader,
                    key,
                    topic: topic.to_owned(),
                    after,
                    buffer: VecDeque::new(),
                })
            }
        }
    }
}

/// Every event of one topic, in order, from when the tail was made (see [`Bus::tail`]).
pub enum Tail {
    /// In-process.
    Local(broadcast::Receiver<Event>),
    /// A Redis stream, read past `after`.
    Redis {
        /// Dedicated connection.
        reader: Client,
        /// Stream key.
        key: String,
        /// Topic.
        topic: String,
        /// The id of the last entry read.
        after: String,
        /// Entries read and not yet handed out.
        buffer: VecDeque<Event>,
    },
}

impl Tail {
    /// The next event (waits for one). After an error, calling again goes on from the last
    /// event returned.
    pub async fn next(&mut self) -> Result<Event, BusError> {
        match self {
            Tail::Local(rx) => local_next(rx).await,
            Tail::Redis {
                reader,
                key,
                topic,
                after,
                buffer,
            } => loop {
                if let Some(event) = buffer.pop_front() {
                    return Ok(event);
                }
                let reply: fred::types::Value = reader
                    .xread(Some(100), Some(1_000), key.as_str(), after.as_str())
                    .await?;
                for (stream_id, fields) in read_entries(reply)? {
                    buffer.push_back(entry_event(topic, &fields));
                    *after = stream_id;
                }
            },
        }
    }
}

/// The next event of an in-process subscription or tail.
async fn local_next(rx: &mut broadcast::Receiver<Event>) -> Result<Event, BusError> {
    match rx.recv().await {
        Ok(event) => Ok(event),
        Err(broadcast::error::RecvError::Lagged(n)) => Err(BusError::Lagged(n)),
        Err(broadcast::error::RecvError::Closed) => Err(BusError::Closed),
    }
}

/// The entries of one stream's XREAD or XREADGROUP reply. A read that waited out its block
/// is nil, which fred's map conversion refuses: no entries.
fn read_entries(reply: fred::types::Value) -> Result<Entries, BusError> {
    if reply.is_null() {
        return Ok(Vec::new());
    }
    let response: HashMap<String, Entries> = reply.into_xread_response()?;
    Ok(response.into_values().next().unwrap_or_default())
}

fn entry_event(topic: &str, fields: &HashMap<String, String>) -> Event {
    let get = |k: &str| fields.get(k).cloned().unwrap_or_default();
    Event {
        id: get("id"),
        topic: topic.to_owned(),
        aggregate_id: get("aggregate_id"),
        payload: get("payload"),
        occurred_at_ms: get("occurred_at_ms").parse().unwrap_or_default(),
    }
}

/// One delivery: the event and, on Redis, what acknowledging it takes.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The event.
    pub event: Event,
    stream_id: Option<String>,
}

/// A subscription to one topic.
pub enum Subscription {
    /// In-process.
    Local(broadcast::Receiver<Event>),
    /// Redis Streams, as one consumer of a group.
    Redis {
        /// Dedicated connection.
        reader: Client,
        /// Stream key.
        key: String,
        /// Topic.
        topic: String,
        /// Group.
        group: String,
        /// Consumer.
        consumer: String,
        /// Entries read and not yet handed out.
        buffer: VecDeque<Delivery>,
        /// Whether the consumer's pending entries were read.
        pending_done: bool,
    },
}

type Entries = Vec<(String, HashMap<String, String>)>;

impl Subscription {
    /// The next event (waits for one).
    pub async fn next(&mut self) -> Result<Delivery, BusError> {
        match self {
            Subscription::Local(rx) => local_next(rx).await.map(|event| Delivery {
                event,
                stream_id: None,
            }),
            Subscription::Redis {
                reader,
                key,
                topic,
                group,
                consumer,
                buffer,
                pending_done,
            } => loop {
                if let Some(d) = buffer.pop_front() {
                    return Ok(d);
                }
                let from = if *pending_done { ">" } else { "0" };
                let block = if *pending_done { Some(1_000) } else { None };
                let reply: fred::types::Value = reader
                    .xreadgroup(
                        group.as_str(),
                        consumer.as_str(),
                        Some(100),
                        block,
                        false,
                        key.as_str(),
                        from,
                    )
                    .await?;
                let entries = read_entries(reply)?;
                if entries.is_empty() && !*pending_done {
                    *pending_done = true;
                }
                for (stream_id, fields) in entries {
                    buffer.push_back(Delivery {
                        event: entry_event(topic, &fields),
                        stream_id: Some(stream_id),
                    });
                }
            },
        }
    }

    /// Acknowledges a delivery: it is not redelivered to the group.
    pub async fn ack(&self, delivery: &Delivery) -> Result<(), BusError> {
        if let (
            Subscription::Redis {
                reader, key, group, ..
            },
            Some(id),
        ) = (self, &delivery.stream_id)
        {
            let _: i64 = reader
                .xack(key.as_str(), group.as_str(), id.as_str())
                .await?;
        }
        Ok(())
    }
}

/// How often an idle relay looks at its outbox when nothing tells it of new rows (SQLite, or
/// PostgreSQL while its notifications cannot be heard).
const RELAY_POLL: Duration = Duration::from_millis(100);

/// How often an idle relay that hears PostgreSQL's notifications looks anyway: for a
/// notification lost while its listening connection was down.
const RELAY_POLL_NOTIFIED: Duration = Duration::from_secs(1);

/// Publishes a service's outbox to the bus until `stop`: unpublished rows oldest first, each
/// marked published after the bus took it.
///
/// On PostgreSQL the relay listens for the notification [`NotifyOnOutbox`]'s trigger sends
/// when a transaction that wrote to the outbox commits (of any instance on the database), so
/// an event goes out at once rather than at the next look.
pub fn spawn_relay(
    db: DatabaseConnection,
    bus: Bus,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    spawn_relay_polling(db, bus, stop, None)
}

/// As [`spawn_relay`], looking at the outbox every `poll` when idle (instead of every 0.1 s,
/// or every second when it hears notifications). Tests use a long one to show that the
/// notifications alone move events.
pub fn spawn_relay_polling(
    db: DatabaseConnection,
    bus: Bus,
    stop: CancellationToken,
    poll: Option<Duration>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let nudge = Arc::new(tokio::sync::Notify::new());
        let notified = listen_for_outbox(&db, nudge.clone(), stop.clone()).await;
        let poll = poll.unwrap_or(if notified {
            RELAY_POLL_NOTIFIED
        } else {
            RELAY_POLL
        });
        loop {
            let idle = match relay_once(&db, &bus).await {
                Ok(n) => n == 0,
                Err(error) => {
                    tracing::warn!(%error, "outbox relay: will retry");
                    true
                }
            };
            if idle {
                tokio::select! {
                    () = nudge.notified() => {}
                    () = tokio::time::sleep(poll) => {}
                    () = stop.cancelled() => return,
                }
            } else if stop.is_cancelled() {
                return;
            }
        }
    })
}

/// The notification channel of the outbox in the connection's schema.
fn outbox_channel(schema: &str) -> String {
    format!("marquee_outbox_{schema}")
}

/// On PostgreSQL, listens (on a connection of its own, in a task of its own) for the outbox's
/// notifications and turns each into a nudge; true when it listens.
async fn listen_for_outbox(
    db: &DatabaseConnection,
    nudge: Arc<tokio::sync::Notify>,
    stop: CancellationToken,
) -> bool {
    if db.get_database_backend() != sea_orm::DbBackend::Postgres {
        return false;
    }
    let schema = match db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT current_schema() AS s",
        ))
        .await
        .and_then(|row| row.map(|r| r.try_get::<String>("", "s")).transpose())
    {
        Ok(Some(schema)) => schema,
        other => {
            tracing::warn!(?other, "outbox relay: no schema to listen in; polling");
            return false;
        }
    };
    let pool = db.get_postgres_connection_pool();
    let mut listener = match sea_orm::sqlx::postgres::PgListener::connect_with(pool).await {
        Ok(l) => l,
        Err(error) => {
            tracing::warn!(%error, "outbox relay: cannot listen; polling");
            return false;
        }
    };
    if let Err(error) = listener.listen(&outbox_channel(&schema)).await {
        tracing::warn!(%error, "outbox relay: cannot listen; polling");
        return false;
    }
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                n = listener.recv() => match n {
                    Ok(_) => nudge.notify_one(),
                    Err(error) => {
                        // recv reconnects on its next call; the relay's own look covers what
                        // was missed meanwhile.
                        tracing::warn!(%error, "outbox relay: lost its notifications");
                        tokio::time::sleep(RELAY_POLL_NOTIFIED).await;
                    }
                },
            }
        }
    });
    true
}

/// The migration every service with an outbox runs: on PostgreSQL, a trigger that notifies the
/// outbox's channel when a transaction that inserted into it commits (PostgreSQL sends
/// notifications at commit, and once per transaction), which [`spawn_relay`] listens for.
/// Nothing on SQLite, whose one process polls.
pub struct NotifyOnOutbox;

impl sea_orm_migration::MigrationName for NotifyOnOutbox {
    fn name(&self) -> &str {
        "m20261129_000001_outbox_notify"
    }
}

#[sea_orm_migration::async_trait::async_trait]
#[allow(elided_lifetimes_in_paths)]
impl sea_orm_migration::MigrationTrait for NotifyOnOutbox {
    async fn up(&self, manager: &sea_orm_migration::SchemaManager) -> Result<(), DbErr> {
        crate::db::run_sql(
            manager,
            // (run_sql splits at a `;` that ends a line: the function's body keeps to one.)
            "CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN PERFORM pg_notify('marquee_outbox_' || TG_TABLE_SCHEMA, ''); RETURN NULL; END $$;
DROP TRIGGER IF EXISTS outbox_notify ON outbox;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
  FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
",
            "",
        )
        .await
    }
}

/// How long a relay may take to publish one batch on PostgreSQL, where the batch's rows stay
/// locked meanwhile.
const RELAY_BATCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Publishes one batch; returns how many events went out.
///
/// On PostgreSQL, where several instances relay the same outbox, the batch's rows are locked
/// (`FOR UPDATE`) until they are marked: another instance's relay waits and then skips them,
/// so an event is published once (not once per instance) and in order. SQLite serves one
/// process, whose relay is the only one.
pub async fn relay_once(
    db: &DatabaseConnection,
    bus: &Bus,
) -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        let txn = db.begin().await?;
        // A bus that does not answer must not keep the transaction (and its locks) open: an
        // idle transaction also holds back PostgreSQL's vacuum. Dropped, it rolls back, and
        // the batch is published again later.
        let n = tokio::time::timeout(RELAY_BATCH_TIMEOUT, relay_batch(&txn, bus, true))
            .await
            .map_err(|_| "the bus did not take the batch in time")??;
        txn.commit().await?;
        Ok(n)
    } else {
        relay_batch(db, bus, false).await
    }
}

async fn relay_batch(
    conn: &impl ConnectionTrait,
    bus: &Bus,
    lock: bool,
) -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
    let mut query = outbox::Entity::find()
        .filter(outbox::Column::PublishedAt.is_null())
        .order_by_asc(outbox::Column::CreatedAt)
        .order_by_asc(outbox::Column::Id)
        .limit(100);
    if lock {
        query = query.lock_exclusive();
    }
    let rows = query.all(conn).await?;
    let n = rows.len();
    for row in rows {
        bus.publish(&Event {
            id: row.id.clone(),
            topic: row.topic.clone(),
            aggregate_id: row.aggregate_id.clone(),
            payload: row.payload.clone(),
            occurred_at_ms: row.created_at.timestamp_millis(),
        })
        .await?;
        let mut active = row.into_active_model();
        active.published_at = Set(Some(chrono::Utc::now()));
        active.update(conn).await?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn in_process_bus_delivers_to_every_subscriber() {
        let bus = Bus::in_process();
        let mut a = bus.subscribe("t", "g", "a").await.expect("sub");
        let mut b = bus.subscribe("t", "g", "b").await.expect("sub");
        let e = Event {
            id: "1".into(),
            topic: "t".into(),
            aggregate_id: "x".into(),
            payload: "{}".into(),
            occurred_at_ms: 0,
        };
        bus.publish(&e).await.expect("publish");
        assert_eq!(a.next().await.expect("a").event, e);
        assert_eq!(b.next().await.expect("b").event, e);
    }
}
