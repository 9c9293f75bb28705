//! Seating's database: sold seats and allocations (schema `seating` on PostgreSQL).

use marquee_platform::idempotency::{IdempotencyError, IdempotencyKey};
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Set};
use sea_orm_migration::MigratorTrait;

use crate::domain::{Channel, SeatingError, SoldSeat};

/// Sold seats.
pub mod sold_seat {
    use sea_orm::entity::prelude::*;

    /// One sold seat. The primary key (show, seat) is the final guard against a double sale.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sold_seats")]
    pub struct Model {
        /// The show.
        #[sea_orm(primary_key, auto_increment = false)]
        pub show_id: String,
        /// The seat id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub seat_id: String,
        /// The hold it was sold from.
        pub hold_id: String,
        /// The booking.
        pub booking_reference: String,
        /// When.
        pub sold_at: ChronoDateTimeUtc,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Seats allotted to channels other than the platform.
pub mod allocation {
    use sea_orm::entity::prelude::*;

    /// One allotted seat.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "allocations")]
    pub struct Model {
        /// The show.
        #[sea_orm(primary_key, auto_increment = false)]
        pub show_id: String,
        /// The seat id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub seat_id: String,
        /// `box_office` or `partner:<id>`.
        pub channel: String,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// What a sale did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sale {
    /// Sold now (or earlier, by the same hold and booking: a retry).
    Sold(chrono::DateTime<chrono::Utc>),
    /// Some seat is sold to another hold or booking.
    Conflict,
}

/// Seating's database.
#[derive(Clone)]
pub struct SeatingDb {
    db: DatabaseConnection,
}

fn storage(e: impl std::error::Error + Send + Sync + 'static) -> SeatingError {
    SeatingError::storage(e)
}

fn db_err(e: DbErr) -> SeatingError {
    if matches!(e, DbErr::ConnectionAcquire(_) | DbErr::Conn(_)) {
        SeatingError::Unavailable(Box::new(e))
    } else {
        storage(e)
    }
}

impl SeatingDb {
    /// The database connection (for the platform's idempotency-key retention).
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Connects and migrates.
    pub async fn open(url: &str) -> Result<Self, DbErr> {
        let db = marquee_platform::db::connect(url, "seating").await?;
        super::migration::Migrator::up(&db, None).await?;
        Ok(Self { db })
    }

    /// True while the database answers.
    pub async fn ping(&self) -> bool {
        marquee_platform::db::ping(&self.db).await
    }

    /// The sold seats of a show.
    pub async fn sold_seats(&self, show_id: &str) -> Result<Vec<SoldSeat>, SeatingError> {
        Ok(sold_seat::Entity::find()
            .filter(sold_seat::Column::ShowId.eq(show_id))
            .all(&self.db)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(|m| SoldSeat {
                seat_id: m.seat_id,
                hold_id: m.hold_id,
                booking_reference: m.booking_reference,
            })
            .collect())
    }

    /// Deletes the sale of a show's seats to `booking_reference` (the booking was cancelled)
    /// with one `DELETE … RETURNING`, and returns the seats deleted: of two cancellations at
    /// once, exactly one gets them; a retry gets none.
    pub async fn unsell(
        &self,
        show_id: &str,
        booking_reference: &str,
    ) -> Result<Vec<String>, SeatingError> {
        let rows = sold_seat::Entity::delete_many()
            .filter(sold_seat::Column::ShowId.eq(show_id))
            .filter(sold_seat::Column::BookingReference.eq(booking_reference))
            .exec_with_returning(&self.db)
            .await
            .map_err(db_err)?;
        Ok(rows.into_iter().map(|r| r.seat_id).collect())
    }

    /// Seats sold from `hold_id` to `booking_reference` (a confirmed hold being retried).
    pub async fn sold_by(
        &self,
        show_id: &str,
        hold_id: &str,
        booking_reference: &str,
    ) -> Result<Vec<sold_seat::Model>, SeatingError> {
        sold_seat::Entity::find()
            .filter(sold_seat::Column::ShowId.eq(show_id))
            .filter(sold_seat::Column::HoldId.eq(hold_id))
            .filter(sold_seat::Column::BookingReference.eq(booking_reference))
            .all(&self.db)
            .await
            .map_err(db_err)
    }

    /// Sells `seat_ids` with one multi-row INSERT: one statement is atomic on its own (all
    /// rows or none), so it runs without BEGIN/COMMIT, one round trip.
    pub async fn sell(
        &self,
        show_id: &str,
        hold_id: &str,
        booking_reference: &str,
        seat_ids: &[String],
    ) -> Result<Sale, SeatingError> {
        let now = chrono::Utc::now();
        let rows = seat_ids.iter().map(|s| sold_seat::ActiveModel {
            show_id: Set(show_id.to_owned()),
            seat_id: Set(s.clone()),
            hold_id: Set(hold_id.to_owned()),
            booking_reference: Set(booking_reference.to_owned()),
            sold_at: Set(now),
        });
        match sold_seat::Entity::insert_many(rows)
            .exec_without_returning(&self.db)
            .await
        {
            Ok(_) => Ok(Sale::Sold(now)),
            Err(e) if marquee_platform::db::is_unique_violation(&e) => {
                let mine = self.sold_by(show_id, hold_id, booking_reference).await?;
                if mine.len() == seat_ids.len() {
                    Ok(Sale::Sold(mine[0].sold_at))
                } else {
                    Ok(Sale::Conflict)
                }
            }
            Err(e) => Err(db_err(e)),
        }
    }

    /// A show's allocation: (seat id, channel) for seats not on the platform channel.
    pub async fn allocation(&self, show_id: &str) -> Result<Vec<(String, Channel)>, SeatingError> {
        Ok(allocation::Entity::find()
            .filter(allocation::Column::ShowId.eq(show_id))
            .all(&self.db)
            .await
            .map_err(db_err)?
            .into_iter()
            .filter_map(|m| Channel::from_key(&m.channel).map(|c| (m.seat_id, c)))
            .collect())
    }

    /// Replaces a show's allocation, idempotently under `key`.
    pub async fn set_allocation(
        &self,
        key: &IdempotencyKey,
        show_id: &str,
        seats: &[(String, Channel)],
    ) -> Result<(), SeatingError> {
        let idem = |e: IdempotencyError| match e {
            IdempotencyError::Mismatch => SeatingError::IdempotencyMismatch,
            other => storage(other),
        };
        let _: bool = key
            .run(&self.db, idem, |txn| async move {
                let out = replace_allocation(&txn, show_id, seats).await;
                (txn, out.map(|()| true))
            })
            .await?;
        Ok(())
    }
}

/// [`SeatingDb::set_allocation`]'s change, in its transaction.
async fn replace_allocation(
    txn: &sea_orm::DatabaseTransaction,
    show_id: &str,
    seats: &[(String, Channel)],
) -> Result<(), SeatingError> {
    allocation::Entity::delete_many()
        .filter(allocation::Column::ShowId.eq(show_id))
        .exec(txn)
        .await
        .map_err(db_err)?;
    if !seats.is_empty() {
        let rows = seats.iter().map(|(s, c)| allocation::ActiveModel {
            show_id: Set(show_id.to_owned()),
            seat_id: Set(s.clone()),
            channel: Set(c.key()),
        });
        allocation::Entity::insert_many(rows)
            .exec(txn)
            .await
            .map_err(db_err)?;
    }
    Ok(())
}
