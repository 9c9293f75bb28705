//! Closed orders (CloseOrder): when and why. The first migration's SQL was fixed after these
//! columns were in it, so on a new database they exist already; they are added only where
//! missing.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
#[allow(elided_lifetimes_in_paths)]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let columns = [
            ColumnDef::new(Alias::new("closed_at"))
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
            ColumnDef::new(Alias::new("close_reason"))
                .string()
                .null()
                .to_owned(),
        ];
        for mut column in columns {
            let name = column.get_column_name();
            if !manager.has_column("orders", &name).await? {
                manager
                    .alter_table(
                        Table::alter()
                            .table(Alias::new("orders"))
                            .add_column(&mut column)
                            .to_owned(),
                    )
                    .await?;
            }
        }
        Ok(())
    }
}
