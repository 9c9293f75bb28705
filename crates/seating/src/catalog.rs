//! Shows and layouts from the catalog over gRPC, cached in the process: layouts long (they do
//! not change while a screen has shows), shows (state, start, prices) briefly.

use std::{collections::HashMap, sync::Arc, time::Duration};

use marquee_proto::catalog::v1::{
    self as pb, catalog_service_client::CatalogServiceClient, row_item::Item,
};
use tonic::{Code, transport::Channel};

use crate::domain::{Layout, Money, SeatDef, SeatingError, ShowContext, ShowInfo};

/// The catalog as seating sees it.
#[derive(Clone)]
pub struct CatalogSource {
    client: CatalogServiceClient<Channel>,
    shows: moka::sync::Cache<String, Arc<ShowInfo>>,
    layouts: moka::sync::Cache<String, Arc<Layout>>,
}

fn from_status(status: tonic::Status, kind: &'static str, id: &str) -> SeatingError {
    match status.code() {
        Code::NotFound | Code::InvalidArgument => SeatingError::not_found(kind, id),
        _ => SeatingError::Unavailable(Box::new(status)),
    }
}

impl CatalogSource {
    /// A source calling the catalog at `url` (connected lazily).
    pub fn new(url: &str, layout_ttl: Duration, show_ttl: Duration) -> Result<Self, String> {
        let channel = tonic::transport::Endpoint::from_shared(url.to_owned())
            .map_err(|e| format!("seating.catalog_url: {e}"))?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .connect_lazy();
        Ok(Self {
            client: CatalogServiceClient::new(channel),
            shows: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(show_ttl)
                .build(),
            layouts: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(layout_ttl)
                .build(),
        })
    }

    /// The show and its layout.
    pub async fn show(&self, show_id: &str) -> Result<ShowContext, SeatingError> {
        let show = match self.shows.get(show_id) {
            Some(s) => s,
            None => {
                let resp = self
                    .client
                    .clone()
                    .get_show(pb::GetShowRequest {
                        show_id: show_id.to_owned(),
                    })
                    .await
                    .map_err(|s| from_status(s, "show", show_id))?
                    .into_inner();
                let s = resp
                    .show
                    .ok_or_else(|| SeatingError::not_found("show", show_id))?;
                let info = Arc::new(ShowInfo {
                    id: s.id,
                    screen_id: s.screen_id,
                    theatre_id: s.theatre_id,
                    start_secs: s.start_time.map(|t| t.seconds).unwrap_or_default(),
                    cancelled: s.state == pb::ShowState::Cancelled as i32,
                    prices: s
                        .prices
                        .into_iter()
                        .filter_map(|p| {
                            p.price.map(|m| {
                                (
                                    p.category_code,
                                    Money {
                                        currency: m.currency_code,
                                        amount_minor: m.amount_minor,
                                    },
                                )
                            })
                        })
                        .collect::<HashMap<_, _>>(),
                });
                self.shows.insert(show_id.to_owned(), info.clone());
                info
            }
        };
        let layout = match self.layouts.get(&show.screen_id) {
            Some(l) => l,
            None => {
                let resp = self
                    .client
                    .clone()
                    .get_screen_layout(pb::GetScreenLayoutRequest {
                        screen_id: show.screen_id.clone(),
                    })
                    .await
                    .map_err(|s| from_status(s, "show", show_id))?
                    .into_inner();
                let layout = Arc::new(layout_of(
                    resp.screen.and_then(|s| s.layout).unwrap_or_default(),
                ));
                self.layouts.insert(show.screen_id.clone(), layout.clone());
                layout
            }
        };
        Ok(ShowContext { show, layout })
    }
}

fn layout_of(layout: pb::SeatLayout) -> Layout {
    let mut seats = Vec::new();
    for (r, row) in layout.rows.into_iter().enumerate() {
        let mut pos = 0u32;
        for item in row.items {
            match item.item {
                Some(Item::Seat(s)) => {
                    let id = if s.id.is_empty() {
                        format!("{}-{}", row.label, s.number)
                    } else {
                        s.id
                    };
                    seats.push(SeatDef {
                        id,
                        row: r as u32,
                        position: pos,
                        category: row.category_code.clone(),
                    });
                    pos += 1;
                }
                Some(Item::Gap(g)) => pos += g.width.max(1) as u32,
                None => {}
            }
        }
    }
    Layout::new(seats)
}
