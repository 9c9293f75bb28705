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
    /// Future caches: concurrent misses of one key share one catalog call (ten thousand
    /// viewers opening a show's seat map at once made ten thousand calls, and some timed out).
    shows: moka::future::Cache<String, Arc<ShowInfo>>,
    layouts: moka::future::Cache<String, Arc<Layout>>,
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
            shows: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(show_ttl)
                .build(),
            layouts: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(layout_ttl)
                .build(),
        })
    }

    /// The show and its layout.
    pub async fn show(&self, show_id: &str) -> Result<ShowContext, SeatingError> {
        let show = self
            .shows
            .try_get_with_by_ref(show_id, self.fetch_show(show_id))
            .await
            .map_err(SeatingError::from_shared)?;
        let layout = self
            .layouts
            .try_get_with_by_ref(&show.screen_id, self.fetch_layout(show_id, &show.screen_id))
            .await
            .map_err(SeatingError::from_shared)?;
        Ok(ShowContext { show, layout })
    }

    async fn fetch_show(&self, show_id: &str) -> Result<Arc<ShowInfo>, SeatingError> {
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
        Ok(Arc::new(ShowInfo {
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
        }))
    }

    async fn fetch_layout(
        &self,
        show_id: &str,
        screen_id: &str,
    ) -> Result<Arc<Layout>, SeatingError> {
        let resp = self
            .client
            .clone()
            .get_screen_layout(pb::GetScreenLayoutRequest {
                screen_id: screen_id.to_owned(),
            })
            .await
            .map_err(|s| from_status(s, "show", show_id))?
            .into_inner();
        Ok(Arc::new(layout_of(
            resp.screen.and_then(|s| s.layout).unwrap_or_default(),
        )))
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use marquee_proto::catalog::v1::catalog_service_server::{
        CatalogService, CatalogServiceServer,
    };
    use tonic::{Request, Response, Status};

    use super::*;

    /// A catalog that answers GetShow and GetScreenLayout slowly and counts them. The other
    /// RPCs are not used by seating.
    #[derive(Clone, Default)]
    struct Counting {
        shows: Arc<AtomicUsize>,
        layouts: Arc<AtomicUsize>,
    }

    const UNUSED: &str = "not used by seating";

    #[tonic::async_trait]
    impl CatalogService for Counting {
        async fn list_cities(
            &self,
            _: Request<pb::ListCitiesRequest>,
        ) -> Result<Response<pb::ListCitiesResponse>, Status> {
            Err(Status::unimplemented(UNUSED))
        }
        async fn search_shows(
            &self,
            _: Request<pb::SearchShowsRequest>,
        ) -> Result<Response<pb::SearchShowsResponse>, Status> {
            Err(Status::unimplemented(UNUSED))
        }
        async fn list_movies(
            &self,
            _: Request<pb::ListMoviesRequest>,
        ) -> Result<Response<pb::ListMoviesResponse>, Status> {
            Err(Status::unimplemented(UNUSED))
        }
        async fn get_movie(
            &self,
            _: Request<pb::GetMovieRequest>,
        ) -> Result<Response<pb::GetMovieResponse>, Status> {
            Err(Status::unimplemented(UNUSED))
        }
        async fn list_theatres(
            &self,
            _: Request<pb::ListTheatresRequest>,
        ) -> Result<Response<pb::ListTheatresResponse>, Status> {
            Err(Status::unimplemented(UNUSED))
        }
        async fn get_theatre(
            &self,
            _: Request<pb::GetTheatreRequest>,
        ) -> Result<Response<pb::GetTheatreResponse>, Status> {
            Err(Status::unimplemented(UNUSED))
        }
        async fn get_show(
            &self,
            request: Request<pb::GetShowRequest>,
        ) -> Result<Response<pb::GetShowResponse>, Status> {
            self.shows.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(100)).await;
            let id = request.into_inner().show_id;
            if id == "missing" {
                return Err(Status::not_found("no such show"));
            }
            Ok(Response::new(pb::GetShowResponse {
                show: Some(pb::Show {
                    id,
                    screen_id: "screen-1".into(),
                    ..Default::default()
                }),
            }))
        }
        async fn get_screen_layout(
            &self,
            _: Request<pb::GetScreenLayoutRequest>,
        ) -> Result<Response<pb::GetScreenLayoutResponse>, Status> {
            self.layouts.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok(Response::new(pb::GetScreenLayoutResponse {
                screen: Some(pb::Screen::default()),
            }))
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_misses_share_one_catalog_call() {
        let counting = Counting::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(CatalogServiceServer::new(counting.clone()))
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        let source = CatalogSource::new(
            &format!("http://{addr}"),
            Duration::from_secs(60),
            Duration::from_secs(60),
        )
        .expect("source");

        let calls = (0..500).map(|_| source.show("show-1"));
        for ctx in futures::future::join_all(calls).await {
            assert_eq!(ctx.expect("show").show.id, "show-1");
        }
        assert_eq!(counting.shows.load(Ordering::SeqCst), 1, "GetShow calls");
        assert_eq!(counting.layouts.load(Ordering::SeqCst), 1, "layout calls");

        // A show that does not exist is NOT_FOUND for every waiter, not a storage error.
        let calls = (0..50).map(|_| source.show("missing"));
        for r in futures::future::join_all(calls).await {
            assert!(
                matches!(r, Err(SeatingError::NotFound { kind: "show", .. })),
                "{r:?}"
            );
        }
        assert_eq!(counting.shows.load(Ordering::SeqCst), 2, "GetShow calls");
        server.abort();
    }
}
