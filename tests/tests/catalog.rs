//! The catalog end to end: real server on 127.0.0.1:0, generated clients, SQLite and
//! PostgreSQL+Redis.

mod common;

use common::*;
use marquee_proto::catalog::v1 as pb;
use tonic::Code;

on_both_backends!(
    search_filters,
    pagination,
    admin_flows,
    idempotency,
    bad_input,
    cache_invalidation,
    concurrent_schedules_never_overlap,
    admin_service_needs_the_admin_role,
);

/// Midnight IST of the day after tomorrow, plus `hours`.
fn day_after_tomorrow(hours: i64) -> i64 {
    let ist = 5 * 3600 + 1800;
    let today_ist = (now() + ist).div_euclid(86_400) * 86_400 - ist;
    today_ist + 2 * 86_400 + hours * 3600
}

fn ist_date(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs + 5 * 3600 + 1800, 0)
        .expect("time")
        .format("%Y-%m-%d")
        .to_string()
}

async fn search(
    app: &TestApp,
    req: pb::SearchShowsRequest,
) -> Result<Vec<pb::ShowListing>, tonic::Status> {
    let mut client = app.catalog().await;
    let mut all = Vec::new();
    let mut req = req;
    loop {
        let page = client.search_shows(req.clone()).await?.into_inner();
        all.extend(page.shows);
        if page.next_page_token.is_empty() {
            return Ok(all);
        }
        req.page_token = page.next_page_token;
    }
}

fn ids(listings: &[pb::ShowListing]) -> Vec<&str> {
    listings
        .iter()
        .map(|l| l.show.as_ref().expect("show").id.as_str())
        .collect()
}

async fn search_filters(app: TestApp) {
    let v = venue(&app).await;
    let mut admin = app.admin().await;
    let other = admin
        .create_movie(pb::CreateMovieRequest {
            request_id: rid(),
            movie: Some(movie("Laugh Riot", "en", &["Comedy"], 100)),
        })
        .await
        .expect("movie")
        .into_inner()
        .movie
        .expect("movie");
    let t0 = day_after_tomorrow(10);
    let s1 = admin
        .schedule_show(schedule(&v, t0))
        .await
        .expect("s1")
        .into_inner()
        .show
        .expect("show");
    let mut req2 = schedule(&v, t0 + 3 * 3600);
    req2.movie_id = other.id.clone();
    req2.language = "en".into();
    req2.format = pb::Format::Format3d as i32;
    let s2 = admin
        .schedule_show(req2)
        .await
        .expect("s2")
        .into_inner()
        .show
        .expect("show");
    let s3 = admin
        .schedule_show(schedule(&v, t0 + 86_400))
        .await
        .expect("s3")
        .into_inner()
        .show
        .expect("show");

    let base = pb::SearchShowsRequest {
        city_id: v.city.id.clone(),
        ..Default::default()
    };
    let all = search(&app, base.clone()).await.expect("all");
    assert_eq!(
        ids(&all),
        [s1.id.as_str(), s2.id.as_str(), s3.id.as_str()],
        "ordered by start time"
    );
    let first = &all[0];
    assert_eq!(first.movie_title, v.movie.title);
    assert_eq!(first.theatre_name, "Galaxy Cinemas");
    assert_eq!(first.screen_name, "Audi 1");
    assert_eq!(
        first.lowest_price.as_ref().map(|m| m.amount_minor),
        Some(20_000)
    );

    let by = |f: fn(&mut pb::SearchShowsRequest)| {
        let mut r = base.clone();
        f(&mut r);
        r
    };
    let language = search(&app, by(|r| r.language = "en".into()))
        .await
        .expect("lang");
    assert_eq!(ids(&language), [s2.id.as_str()]);
    let genre = search(&app, by(|r| r.genre = "COMEDY".into()))
        .await
        .expect("genre");
    assert_eq!(ids(&genre), [s2.id.as_str()]);
    let genre = search(&app, by(|r| r.genre = "thriller".into()))
        .await
        .expect("genre");
    assert_eq!(ids(&genre), [s1.id.as_str(), s3.id.as_str()]);
    let format = search(&app, by(|r| r.format = pb::Format::Format3d as i32))
        .await
        .expect("format");
    assert_eq!(ids(&format), [s2.id.as_str()]);
    let imax = search(&app, by(|r| r.format = pb::Format::Imax2d as i32))
        .await
        .expect("imax");
    assert!(imax.is_empty());
    let mut r = base.clone();
    r.movie_id = v.movie.id.clone();
    assert_eq!(
        ids(&search(&app, r).await.expect("movie")),
        [s1.id.as_str(), s3.id.as_str()]
    );
    let mut r = base.clone();
    r.theatre_id = v.theatre.id.clone();
    assert_eq!(search(&app, r).await.expect("theatre").len(), 3);
    let r = pb::SearchShowsRequest {
        theatre_id: uuid::Uuid::now_v7().to_string(),
        ..Default::default()
    };
    assert!(search(&app, r).await.expect("other theatre").is_empty());
    let text = search(&app, by(|r| r.query = "laugh".into()))
        .await
        .expect("text");
    assert_eq!(ids(&text), [s2.id.as_str()]);
    let text = search(&app, by(|r| r.query = "TEST MOV".into()))
        .await
        .expect("text");
    assert_eq!(ids(&text), [s1.id.as_str(), s3.id.as_str()]);
    let text = search(&app, by(|r| r.query = "100%".into()))
        .await
        .expect("text");
    assert!(text.is_empty(), "LIKE wildcards in the text are literal");

    let mut r = base.clone();
    r.start_time_from = Some(at(t0 + 60));
    r.start_time_before = Some(at(t0 + 86_400));
    assert_eq!(
        ids(&search(&app, r).await.expect("window")),
        [s2.id.as_str()]
    );
    let mut r = base.clone();
    r.date = ist_date(t0);
    assert_eq!(
        ids(&search(&app, r).await.expect("date")),
        [s1.id.as_str(), s2.id.as_str()]
    );
    let mut r = base.clone();
    r.date = ist_date(t0 + 86_400);
    assert_eq!(ids(&search(&app, r).await.expect("date")), [s3.id.as_str()]);

    // Another city sees none of it.
    let r = pb::SearchShowsRequest {
        city_id: uuid::Uuid::now_v7().to_string(),
        ..Default::default()
    };
    assert!(search(&app, r).await.expect("other city").is_empty());

    // ListMovies by city lists the movies showing there.
    let movies = app
        .catalog()
        .await
        .list_movies(pb::ListMoviesRequest {
            city_id: v.city.id.clone(),
            ..Default::default()
        })
        .await
        .expect("movies")
        .into_inner()
        .movies;
    let mut titles: Vec<_> = movies.iter().map(|m| m.title.clone()).collect();
    titles.sort();
    assert_eq!(titles.len(), 2);
    assert!(titles.contains(&"Laugh Riot".to_owned()));
    app.stop().await;
}

async fn pagination(app: TestApp) {
    let v = venue(&app).await;
    let mut admin = app.admin().await;
    let t0 = day_after_tomorrow(9);
    let mut scheduled = Vec::new();
    for i in 0..5 {
        let show = admin
            .schedule_show(schedule(&v, t0 + i * 3 * 3600))
            .await
            .expect("schedule")
            .into_inner()
            .show
            .expect("show");
        scheduled.push(show.id);
    }
    let mut client = app.catalog().await;
    let mut req = pb::SearchShowsRequest {
        city_id: v.city.id.clone(),
        page_size: 2,
        ..Default::default()
    };
    let mut pages = Vec::new();
    loop {
        let page = client
            .search_shows(req.clone())
            .await
            .expect("page")
            .into_inner();
        pages.push(
            ids(&page.shows)
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>(),
        );
        if page.next_page_token.is_empty() {
            break;
        }
        req.page_token = page.next_page_token;
    }
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
    assert_eq!(pages.concat(), scheduled);

    // A token belongs to its query.
    let first = client
        .search_shows(pb::SearchShowsRequest {
            city_id: v.city.id.clone(),
            page_size: 2,
            ..Default::default()
        })
        .await
        .expect("first")
        .into_inner();
    let err = client
        .search_shows(pb::SearchShowsRequest {
            city_id: v.city.id.clone(),
            language: "en".into(),
            page_size: 2,
            page_token: first.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .expect_err("token of another query");
    assert_eq!(bad_fields(&err), ["page_token"]);
    let err = client
        .search_shows(pb::SearchShowsRequest {
            page_token: "not-a-token".into(),
            ..Default::default()
        })
        .await
        .expect_err("garbage token");
    assert_eq!(bad_fields(&err), ["page_token"]);
    let err = client
        .search_shows(pb::SearchShowsRequest {
            page_size: -1,
            ..Default::default()
        })
        .await
        .expect_err("negative size");
    assert_eq!(bad_fields(&err), ["page_size"]);

    // Cities page too.
    for i in 0..3 {
        admin
            .create_city(pb::CreateCityRequest {
                request_id: rid(),
                city: Some(pb::City {
                    name: format!("Pagepur {i}"),
                    country_code: "IN".into(),
                    time_zone: "Asia/Kolkata".into(),
                    currency_code: "INR".into(),
                    ..Default::default()
                }),
            })
            .await
            .expect("city");
    }
    let mut token = String::new();
    let mut names = Vec::new();
    loop {
        let page = client
            .list_cities(pb::ListCitiesRequest {
                page_size: 1,
                page_token: token,
            })
            .await
            .expect("cities")
            .into_inner();
        names.extend(page.cities.into_iter().map(|c| c.name));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(names.len(), 4);
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "cities by name");
    app.stop().await;
}

async fn admin_flows(app: TestApp) {
    let v = venue(&app).await;
    let mut admin = app.admin().await;
    let mut client = app.catalog().await;

    // The theatre shows its screen; the layout carries seat ids, aisles and wheelchair spaces.
    let theatre = client
        .get_theatre(pb::GetTheatreRequest {
            theatre_id: v.theatre.id.clone(),
        })
        .await
        .expect("theatre")
        .into_inner();
    assert_eq!(theatre.screens.len(), 1);
    assert_eq!(theatre.screens[0].seat_count, 10);
    let layout = client
        .get_screen_layout(pb::GetScreenLayoutRequest {
            screen_id: screen_id(&v),
        })
        .await
        .expect("layout")
        .into_inner()
        .screen
        .expect("screen")
        .layout
        .expect("layout");
    let row_a: Vec<_> = layout.rows[0]
        .items
        .iter()
        .map(|i| match &i.item {
            Some(pb::row_item::Item::Seat(s)) => s.id.clone(),
            Some(pb::row_item::Item::Gap(g)) => format!("gap{}", g.width),
            None => "?".into(),
        })
        .collect();
    assert_eq!(row_a, ["A-1", "A-2", "gap1", "A-3", "A-4"]);
    let wheelchair = layout.rows[2].items.iter().any(|i| {
        matches!(&i.item, Some(pb::row_item::Item::Seat(s)) if s.kind == pb::SeatKind::Wheelchair as i32)
    });
    assert!(wheelchair);

    // Update a movie through a field mask: only the named field changes.
    let updated = admin
        .update_movie(pb::UpdateMovieRequest {
            request_id: rid(),
            movie: Some(pb::Movie {
                id: v.movie.id.clone(),
                title: "A New Title".into(),
                synopsis: "ignored: not in the mask".into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["title".into()],
            }),
        })
        .await
        .expect("update movie")
        .into_inner()
        .movie
        .expect("movie");
    assert_eq!(updated.title, "A New Title");
    assert_eq!(updated.synopsis, v.movie.synopsis);
    let fetched = client
        .get_movie(pb::GetMovieRequest {
            movie_id: v.movie.id.clone(),
        })
        .await
        .expect("get movie")
        .into_inner()
        .movie
        .expect("movie");
    assert_eq!(fetched, updated);

    // Update a theatre.
    let theatre = admin
        .update_theatre(pb::UpdateTheatreRequest {
            request_id: rid(),
            theatre: Some(pb::Theatre {
                id: v.theatre.id.clone(),
                amenities: vec!["Parking".into(), "Recliners".into()],
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["amenities".into()],
            }),
        })
        .await
        .expect("update theatre")
        .into_inner()
        .theatre
        .expect("theatre");
    assert_eq!(theatre.amenities, ["Parking", "Recliners"]);
    assert_eq!(theatre.name, "Galaxy Cinemas");

    // A second theatre with the same name in the same city already exists.
    let err = admin
        .create_theatre(pb::CreateTheatreRequest {
            request_id: rid(),
            theatre: Some(pb::Theatre {
                city_id: v.city.id.clone(),
                name: "Galaxy Cinemas".into(),
                address: "elsewhere".into(),
                ..Default::default()
            }),
        })
        .await
        .expect_err("duplicate");
    assert_eq!(err.code(), Code::AlreadyExists);

    // Schedule, overlap, reprice, cancel.
    let t0 = day_after_tomorrow(11);
    let show = admin
        .schedule_show(schedule(&v, t0))
        .await
        .expect("schedule")
        .into_inner()
        .show
        .expect("show");
    assert_eq!(show.state, pb::ShowState::Scheduled as i32);
    assert_eq!(show.city_id, v.city.id);
    assert_eq!(show.theatre_id, v.theatre.id);
    let err = admin
        .schedule_show(schedule(&v, t0 + 3600))
        .await
        .expect_err("overlap");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "SHOW_OVERLAP");
    assert!(err.message().contains(&show.id), "{}", err.message());
    // Back to back is fine.
    admin
        .schedule_show(schedule(&v, t0 + 150 * 60))
        .await
        .expect("back to back");

    let repriced = admin
        .update_show_prices(pb::UpdateShowPricesRequest {
            request_id: rid(),
            show_id: show.id.clone(),
            prices: prices(40_000, 22_500),
        })
        .await
        .expect("reprice")
        .into_inner()
        .show
        .expect("show");
    assert_eq!(repriced.prices, prices(40_000, 22_500));

    // The layout of a screen with shows cannot change; its name can.
    let err = admin
        .update_screen(pb::UpdateScreenRequest {
            request_id: rid(),
            screen_id: screen_id(&v),
            layout: Some(small_layout()).map(|mut l| {
                l.rows.truncate(2);
                l
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["layout".into()],
            }),
            ..Default::default()
        })
        .await
        .expect_err("layout under shows");
    assert_eq!(reason(&err), "SCREEN_HAS_SHOWS");
    let renamed = admin
        .update_screen(pb::UpdateScreenRequest {
            request_id: rid(),
            screen_id: screen_id(&v),
            name: "Audi 1 (Dolby Atmos)".into(),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["name".into()],
            }),
            ..Default::default()
        })
        .await
        .expect("rename")
        .into_inner()
        .screen
        .expect("screen");
    assert_eq!(
        renamed.screen.expect("summary").name,
        "Audi 1 (Dolby Atmos)"
    );

    let cancelled = admin
        .cancel_show(pb::CancelShowRequest {
            request_id: rid(),
            show_id: show.id.clone(),
            reason: "Projector fault".into(),
        })
        .await
        .expect("cancel")
        .into_inner()
        .show
        .expect("show");
    assert_eq!(cancelled.state, pb::ShowState::Cancelled as i32);
    assert_eq!(cancelled.cancel_reason, "Projector fault");
    let again = admin
        .cancel_show(pb::CancelShowRequest {
            request_id: rid(),
            show_id: show.id.clone(),
            reason: "again".into(),
        })
        .await
        .expect_err("already cancelled");
    assert_eq!(reason(&again), "SHOW_CANCELLED");
    let err = admin
        .update_show_prices(pb::UpdateShowPricesRequest {
            request_id: rid(),
            show_id: show.id.clone(),
            prices: prices(1, 1),
        })
        .await
        .expect_err("reprice cancelled");
    assert_eq!(err.code(), Code::FailedPrecondition);
    // The slot of a cancelled show is free again.
    admin
        .schedule_show(schedule(&v, t0))
        .await
        .expect("reuse the slot");
    let fetched = client
        .get_show(pb::GetShowRequest {
            show_id: show.id.clone(),
        })
        .await
        .expect("get cancelled show")
        .into_inner()
        .show
        .expect("show");
    assert_eq!(fetched.state, pb::ShowState::Cancelled as i32);
    app.stop().await;
}

async fn idempotency(app: TestApp) {
    let v = venue(&app).await;
    let mut admin = app.admin().await;
    let req = schedule(&v, day_after_tomorrow(12));
    let first = admin
        .schedule_show(req.clone())
        .await
        .expect("first")
        .into_inner();
    let retry = admin
        .schedule_show(req.clone())
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(first, retry, "a retry returns the first result");
    let mut other = req.clone();
    other.language = "en".into();
    let err = admin.schedule_show(other).await.expect_err("reused key");
    assert_eq!(bad_fields(&err), ["request_id"]);

    // Concurrent retries of one request create one show.
    let req = schedule(&v, day_after_tomorrow(20));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let mut admin = app.admin().await;
        let req = req.clone();
        tasks.push(tokio::spawn(async move { admin.schedule_show(req).await }));
    }
    let mut shows = Vec::new();
    for t in tasks {
        shows.push(
            t.await
                .expect("join")
                .expect("same request")
                .into_inner()
                .show
                .expect("show")
                .id,
        );
    }
    shows.dedup();
    assert_eq!(shows.len(), 1, "one show for one request id");

    let city_req = pb::CreateCityRequest {
        request_id: rid(),
        city: Some(pb::City {
            name: "Idempur".into(),
            country_code: "IN".into(),
            time_zone: "Asia/Kolkata".into(),
            currency_code: "INR".into(),
            ..Default::default()
        }),
    };
    let a = admin
        .create_city(city_req.clone())
        .await
        .expect("city")
        .into_inner();
    let b = admin
        .create_city(city_req)
        .await
        .expect("city retry")
        .into_inner();
    assert_eq!(a, b);
    let missing = admin
        .create_city(pb::CreateCityRequest {
            request_id: String::new(),
            city: a.city.clone(),
        })
        .await
        .expect_err("no request id");
    assert_eq!(bad_fields(&missing), ["request_id"]);
    app.stop().await;
}

async fn bad_input(app: TestApp) {
    let v = venue(&app).await;
    let mut admin = app.admin().await;
    let mut client = app.catalog().await;
    let unknown = uuid::Uuid::now_v7().to_string();

    let err = client
        .get_show(pb::GetShowRequest {
            show_id: "nope".into(),
        })
        .await
        .expect_err("bad id");
    assert_eq!(bad_fields(&err), ["show_id"]);
    let err = client
        .get_show(pb::GetShowRequest {
            show_id: unknown.clone(),
        })
        .await
        .expect_err("unknown show");
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(
        client
            .get_movie(pb::GetMovieRequest {
                movie_id: unknown.clone()
            })
            .await
            .expect_err("movie")
            .code(),
        Code::NotFound
    );
    assert_eq!(
        client
            .get_theatre(pb::GetTheatreRequest {
                theatre_id: unknown.clone()
            })
            .await
            .expect_err("theatre")
            .code(),
        Code::NotFound
    );
    assert_eq!(
        client
            .get_screen_layout(pb::GetScreenLayoutRequest {
                screen_id: unknown.clone()
            })
            .await
            .expect_err("screen")
            .code(),
        Code::NotFound
    );
    assert_eq!(
        client
            .list_theatres(pb::ListTheatresRequest {
                city_id: unknown.clone(),
                ..Default::default()
            })
            .await
            .expect_err("city")
            .code(),
        Code::NotFound
    );

    // Cities.
    let err = admin
        .create_city(pb::CreateCityRequest {
            request_id: rid(),
            city: Some(pb::City {
                name: "Nowhere".into(),
                country_code: "India".into(),
                time_zone: "Asia/Mumbai".into(),
                currency_code: "inr".into(),
                ..Default::default()
            }),
        })
        .await
        .expect_err("bad city");
    assert_eq!(
        bad_fields(&err),
        ["city.country_code", "city.time_zone", "city.currency_code"]
    );

    // Movies.
    let mut m = movie("", "hindi", &[], 0);
    m.runtime = Some(prost_types::Duration {
        seconds: 90,
        nanos: 0,
    });
    let err = admin
        .create_movie(pb::CreateMovieRequest {
            request_id: rid(),
            movie: Some(m),
        })
        .await
        .expect_err("bad movie");
    assert_eq!(bad_fields(&err), ["movie.runtime"]);
    let mut m = movie("", "hindi", &[], 100);
    m.release_date = "24/11/2026".into();
    let err = admin
        .create_movie(pb::CreateMovieRequest {
            request_id: rid(),
            movie: Some(m),
        })
        .await
        .expect_err("bad movie");
    assert_eq!(
        bad_fields(&err),
        [
            "movie.title",
            "movie.original_language",
            "movie.genres",
            "movie.release_date"
        ]
    );
    let err = admin
        .update_movie(pb::UpdateMovieRequest {
            request_id: rid(),
            movie: Some(v.movie.clone()),
            update_mask: None,
        })
        .await
        .expect_err("no mask");
    assert_eq!(bad_fields(&err), ["update_mask"]);
    let err = admin
        .update_movie(pb::UpdateMovieRequest {
            request_id: rid(),
            movie: Some(v.movie.clone()),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["id".into()],
            }),
        })
        .await
        .expect_err("immutable field");
    assert_eq!(bad_fields(&err), ["update_mask"]);

    // Screens.
    let mut layout = small_layout();
    layout.rows[1].label = "A".into();
    layout.rows[2].category_code = "GOLD".into();
    let err = admin
        .create_screen(pb::CreateScreenRequest {
            request_id: rid(),
            theatre_id: v.theatre.id.clone(),
            name: "Audi 2".into(),
            formats: vec![],
            layout: Some(layout),
        })
        .await
        .expect_err("bad screen");
    assert_eq!(
        bad_fields(&err),
        [
            "formats",
            "layout.rows[1].label",
            "layout.rows[2].category_code"
        ]
    );
    let err = admin
        .create_screen(pb::CreateScreenRequest {
            request_id: rid(),
            theatre_id: unknown.clone(),
            name: "Audi 2".into(),
            formats: vec![pb::Format::Format2d as i32],
            layout: Some(small_layout()),
        })
        .await
        .expect_err("unknown theatre");
    assert_eq!(err.code(), Code::NotFound);

    // Shows.
    let t0 = day_after_tomorrow(15);
    type Mutation = Box<dyn Fn(&mut pb::ScheduleShowRequest)>;
    let cases: Vec<(&str, Mutation, Vec<&str>)> = vec![
        (
            "no request id",
            Box::new(|r| r.request_id.clear()),
            vec!["request_id"],
        ),
        (
            "ends before it starts",
            Box::new(move |r| r.end_time = Some(at(t0 - 60))),
            vec!["end_time"],
        ),
        (
            "shorter than the movie",
            Box::new(move |r| r.end_time = Some(at(t0 + 3600))),
            vec!["end_time"],
        ),
        (
            "in the past",
            Box::new(|r| {
                let past = now() - 86_400;
                r.start_time = Some(at(past));
                r.end_time = Some(at(past + 150 * 60));
            }),
            vec!["start_time"],
        ),
        (
            "no start",
            Box::new(|r| r.start_time = None),
            vec!["start_time"],
        ),
        ("no format", Box::new(|r| r.format = 0), vec!["format"]),
        (
            "format the screen lacks",
            Box::new(|r| r.format = pb::Format::Imax3d as i32),
            vec!["format"],
        ),
        (
            "bad language",
            Box::new(|r| r.language = "Hindi".into()),
            vec!["language"],
        ),
        (
            "no prices",
            Box::new(|r| r.prices.clear()),
            vec!["prices", "prices"],
        ),
        (
            "wrong currency",
            Box::new(|r| r.prices[0].price.as_mut().expect("price").currency_code = "USD".into()),
            vec!["prices[0].price.currency_code"],
        ),
        (
            "unknown category",
            Box::new(|r| r.prices[0].category_code = "GOLD".into()),
            vec!["prices[0].category_code", "prices"],
        ),
        (
            "zero price",
            Box::new(|r| r.prices[1].price.as_mut().expect("price").amount_minor = 0),
            vec!["prices[1].price.amount_minor"],
        ),
        (
            "bad movie id",
            Box::new(|r| r.movie_id = "x".into()),
            vec!["movie_id"],
        ),
    ];
    for (name, mutate, fields) in cases {
        let mut req = schedule(&v, t0);
        mutate(&mut req);
        let err = admin.schedule_show(req).await.expect_err(name);
        assert_eq!(bad_fields(&err), fields, "{name}");
    }
    let mut req = schedule(&v, t0);
    req.movie_id = unknown.clone();
    assert_eq!(
        admin
            .schedule_show(req)
            .await
            .expect_err("unknown movie")
            .code(),
        Code::NotFound
    );
    // Nothing was half-written.
    let shows = search(
        &app,
        pb::SearchShowsRequest {
            city_id: v.city.id.clone(),
            ..Default::default()
        },
    )
    .await
    .expect("search");
    assert!(shows.is_empty());

    // Searches.
    let err = client
        .search_shows(pb::SearchShowsRequest {
            date: "2026-11-24".into(),
            ..Default::default()
        })
        .await
        .expect_err("date without city");
    assert_eq!(bad_fields(&err), ["date"]);
    let err = client
        .search_shows(pb::SearchShowsRequest {
            city_id: v.city.id.clone(),
            date: "tomorrow".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad date");
    assert_eq!(bad_fields(&err), ["date"]);
    let err = client
        .search_shows(pb::SearchShowsRequest {
            start_time_from: Some(at(t0)),
            start_time_before: Some(at(t0 - 1)),
            language: "english".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad window and language");
    assert_eq!(bad_fields(&err), ["language", "start_time_before"]);
    let err = client
        .search_shows(pb::SearchShowsRequest {
            format: 99,
            ..Default::default()
        })
        .await
        .expect_err("bad format");
    assert_eq!(bad_fields(&err), ["format"]);
    app.stop().await;
}

async fn cache_invalidation(app: TestApp) {
    let v = venue(&app).await;
    let mut admin = app.admin().await;
    let mut client = app.catalog().await;
    let show = admin
        .schedule_show(schedule(&v, day_after_tomorrow(10)))
        .await
        .expect("schedule")
        .into_inner()
        .show
        .expect("show");
    let get =
        |client: &mut marquee_proto::catalog::v1::catalog_service_client::CatalogServiceClient<
            _,
        >| {
            let id = show.id.clone();
            let mut client = client.clone();
            async move {
                client
                    .get_show(pb::GetShowRequest { show_id: id })
                    .await
                    .expect("get")
                    .into_inner()
                    .show
                    .expect("show")
            }
        };
    let by_city = pb::SearchShowsRequest {
        city_id: v.city.id.clone(),
        ..Default::default()
    };
    // Warm the caches.
    assert_eq!(get(&mut client).await.prices, prices(35_000, 20_000));
    assert_eq!(
        search(&app, by_city.clone()).await.expect("search").len(),
        1
    );
    assert_eq!(get(&mut client).await.prices, prices(35_000, 20_000));

    if let Some(ext) = &app.external {
        // The reads above went through Redis.
        use fred::prelude::KeysInterface;
        let redis = marquee_platform::redis::connect(&ext.redis_url)
            .await
            .expect("redis");
        // SCAN the whole keyspace (other tests share this Redis): page until the cursor is 0.
        let mut keys: Vec<String> = Vec::new();
        let mut cursor = "0".to_owned();
        loop {
            let (next, page): (String, Vec<String>) = redis
                .scan_page(cursor, format!("{}*", ext.redis_prefix), Some(1000), None)
                .await
                .expect("scan");
            keys.extend(page);
            if next == "0" {
                break;
            }
            cursor = next;
        }
        assert!(
            keys.iter().any(|k| k.contains("catalog:show")),
            "show cached in Redis: {keys:?}"
        );
        let _: i64 = redis.exists(keys).await.expect("exists");
    }

    admin
        .update_show_prices(pb::UpdateShowPricesRequest {
            request_id: rid(),
            show_id: show.id.clone(),
            prices: prices(50_000, 30_000),
        })
        .await
        .expect("reprice");
    assert_eq!(get(&mut client).await.prices, prices(50_000, 30_000));
    let listed = search(&app, by_city.clone()).await.expect("search");
    assert_eq!(
        listed[0].lowest_price.as_ref().map(|m| m.amount_minor),
        Some(30_000)
    );

    admin
        .update_movie(pb::UpdateMovieRequest {
            request_id: rid(),
            movie: Some(pb::Movie {
                id: v.movie.id.clone(),
                title: "Renamed".into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["title".into()],
            }),
        })
        .await
        .expect("rename");
    let listed = search(&app, by_city.clone()).await.expect("search");
    assert_eq!(listed[0].movie_title, "Renamed");

    admin
        .cancel_show(pb::CancelShowRequest {
            request_id: rid(),
            show_id: show.id.clone(),
            reason: "Cancelled for the test".into(),
        })
        .await
        .expect("cancel");
    assert!(search(&app, by_city).await.expect("search").is_empty());
    assert_eq!(
        get(&mut client).await.state,
        pb::ShowState::Cancelled as i32
    );

    // Layouts: warm, change (no shows left on the screen), read the new one.
    let layout = || {
        let mut client = client.clone();
        let id = screen_id(&v);
        async move {
            client
                .get_screen_layout(pb::GetScreenLayoutRequest { screen_id: id })
                .await
                .expect("layout")
                .into_inner()
                .screen
                .expect("screen")
        }
    };
    assert_eq!(layout().await.layout.expect("layout").rows.len(), 3);
    let mut smaller = small_layout();
    smaller.rows.truncate(2);
    admin
        .update_screen(pb::UpdateScreenRequest {
            request_id: rid(),
            screen_id: screen_id(&v),
            layout: Some(smaller),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["layout".into()],
            }),
            ..Default::default()
        })
        .await
        .expect("new layout");
    let screen = layout().await;
    assert_eq!(screen.layout.expect("layout").rows.len(), 2);
    assert_eq!(screen.screen.expect("summary").seat_count, 8);
    app.stop().await;
}

async fn concurrent_schedules_never_overlap(app: TestApp) {
    let v = venue(&app).await;
    let t0 = day_after_tomorrow(14);
    let mut tasks = Vec::new();
    for i in 0..12 {
        let mut admin = app.admin().await;
        // Every request overlaps every other one.
        let req = schedule(&v, t0 + i * 60);
        tasks.push(tokio::spawn(async move { admin.schedule_show(req).await }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.expect("join") {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(reason(&e), "SHOW_OVERLAP", "{e:?}"),
        }
    }
    assert_eq!(ok, 1, "exactly one of the overlapping shows is scheduled");
    app.stop().await;
}

/// The demo data: real-looking cities, theatres, screens and a week of shows.
async fn demo_data(backend: Backend, name: &str) {
    let Some(app) = TestApp::spawn(name, backend, true).await else {
        return;
    };
    let mut client = app.catalog().await;
    let cities = client
        .list_cities(pb::ListCitiesRequest::default())
        .await
        .expect("cities")
        .into_inner()
        .cities;
    assert!(cities.len() >= 3, "{cities:?}");
    let mut theatres = 0;
    let mut screens = 0;
    for city in &cities {
        let list = client
            .list_theatres(pb::ListTheatresRequest {
                city_id: city.id.clone(),
                page_size: 200,
                ..Default::default()
            })
            .await
            .expect("theatres")
            .into_inner()
            .theatres;
        theatres += list.len();
        for t in &list {
            screens += client
                .get_theatre(pb::GetTheatreRequest {
                    theatre_id: t.id.clone(),
                })
                .await
                .expect("theatre")
                .into_inner()
                .screens
                .len();
        }
    }
    assert!(theatres >= 8, "{theatres} theatres");
    assert!(screens >= 20, "{screens} screens");
    let movies = client
        .list_movies(pb::ListMoviesRequest {
            page_size: 200,
            ..Default::default()
        })
        .await
        .expect("movies")
        .into_inner()
        .movies;
    assert!(movies.len() >= 30, "{} movies", movies.len());

    // Every one of the next days has shows in the first city.
    let today = ist_date(now());
    let day = |n: i64| ist_date(now() + n * 86_400);
    for date in [day(1), day(3), day(6)] {
        let shows = client
            .search_shows(pb::SearchShowsRequest {
                city_id: cities[0].id.clone(),
                date: date.clone(),
                page_size: 5,
                ..Default::default()
            })
            .await
            .expect("search")
            .into_inner()
            .shows;
        assert!(!shows.is_empty(), "shows on {date} (today {today})");
        let show = shows[0].show.clone().expect("show");
        let layout = client
            .get_screen_layout(pb::GetScreenLayoutRequest {
                screen_id: show.screen_id.clone(),
            })
            .await
            .expect("layout")
            .into_inner()
            .screen
            .expect("screen")
            .layout
            .expect("layout");
        for category in &layout.categories {
            assert!(
                show.prices.iter().any(|p| p.category_code == category.code),
                "every category is priced"
            );
        }
    }

    // A restart on the same data starts with the same data, not a second copy.
    let before: Vec<String> = cities.iter().map(|c| c.id.clone()).collect();
    let app = app.restart().await;
    let after: Vec<String> = app
        .catalog()
        .await
        .list_cities(pb::ListCitiesRequest::default())
        .await
        .expect("cities")
        .into_inner()
        .cities
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(before, after);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_data_sqlite() {
    demo_data(Backend::Sqlite, "demo_data_sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_data_postgres() {
    demo_data(Backend::Postgres, "demo_data_postgres").await;
}

async fn admin_service_needs_the_admin_role(app: TestApp) {
    let create = || pb::CreateCityRequest {
        request_id: rid(),
        city: Some(pb::City {
            id: String::new(),
            name: "Nowhere".into(),
            region: "Nowhere".into(),
            country_code: "IN".into(),
            time_zone: "Asia/Kolkata".into(),
            currency_code: "INR".into(),
        }),
    };
    let err = app
        .admin_as(None)
        .await
        .create_city(create())
        .await
        .expect_err("anonymous");
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");

    let (_, customer) = app.customer().await;
    let err = app
        .admin_as(Some(&customer.access_token))
        .await
        .create_city(create())
        .await
        .expect_err("customer");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");

    let err = app
        .admin_as(Some("not.a.token"))
        .await
        .cancel_show(pb::CancelShowRequest {
            request_id: rid(),
            show_id: rid(),
            reason: String::new(),
        })
        .await
        .expect_err("malformed");
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");

    app.admin()
        .await
        .create_city(create())
        .await
        .expect("admin");
    app.stop().await;
}
