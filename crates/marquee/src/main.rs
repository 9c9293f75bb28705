//! `marquee`: parses arguments, sets up telemetry, binds, and waits for the shutdown signal.
//! Everything else lives in the library (`lib.rs`) and the service crates.

#![forbid(unsafe_code)]

use std::{net::SocketAddr, path::PathBuf};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use marquee::{MarqueeConfig, Options, ServiceName, Storage};

#[derive(Parser)]
#[command(name = "marquee", version, about = "Marquee: movie tickets over gRPC")]
struct Cli {
    /// A TOML configuration file (see README.md); `MARQUEE_*` variables override it.
    #[arg(long, global = true, env = "MARQUEE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Everything in one process: SQLite under --data, demo data on first start, gRPC and
    /// gRPC-Web on one listener.
    Up {
        /// Data directory.
        #[arg(long, default_value = ".marquee")]
        data: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:50051")]
        listen: SocketAddr,
        /// Do not load the demo data.
        #[arg(long)]
        no_demo_data: bool,
    },
    /// One service against DATABASE_URL (PostgreSQL) and REDIS_URL, or the gateway (its
    /// `[gateway]` settings, no storage).
    Serve {
        /// The service.
        service: ServiceName,
        /// Address to listen on (default: server.listen, or gateway.listen for the gateway).
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Runs the migrations of every service against DATABASE_URL (or --data for SQLite).
    Migrate {
        /// Use the embedded SQLite files under this directory instead of DATABASE_URL.
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// Loads the demo data into services that hold none, against DATABASE_URL (or --data).
    Seed {
        /// Use the embedded SQLite files under this directory instead of DATABASE_URL.
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// Administration that works on the stores directly.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Creates an admin account (the first one; later admins can be created with
    /// IdentityService/CreateUser), against DATABASE_URL or --data.
    Create {
        /// The admin's email address.
        #[arg(long)]
        email: String,
        /// Read the password from the first line of standard input (never from an argument,
        /// which other users of the machine can see).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// Use the embedded SQLite files under this directory instead of DATABASE_URL.
        #[arg(long)]
        data: Option<PathBuf>,
    },
}

const ALL: &[ServiceName] = &[
    ServiceName::Identity,
    ServiceName::Catalog,
    ServiceName::Seating,
    ServiceName::Payments,
    ServiceName::Booking,
];

fn external(config: &MarqueeConfig) -> anyhow::Result<Storage> {
    let database_url = config
        .store
        .database_url
        .as_ref()
        .map(|s| s.expose().clone())
        .context("DATABASE_URL (store.database_url) is not set")?;
    Ok(Storage::External {
        database_url,
        redis_url: config.store.redis_url.as_ref().map(|s| s.expose().clone()),
        redis_key_prefix: if config.store.redis_key_prefix.is_empty() {
            "marquee:".to_owned()
        } else {
            config.store.redis_key_prefix.clone()
        },
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = MarqueeConfig::load(cli.config.as_deref())?;
    let telemetry = marquee_platform::telemetry::init(&config.telemetry, "marquee")?;

    let result = match cli.command {
        Command::Up {
            data,
            listen,
            no_demo_data,
        } => {
            let mut server = config.server.clone();
            server.listen = listen;
            let options = Options {
                server,
                catalog: config.catalog.clone(),
                payments: config.payments.clone(),
                identity: config.identity.clone(),
                storage: Storage::Embedded {
                    data_dir: data.clone(),
                },
                services: ALL.to_vec(),
                seed_demo_data: !no_demo_data,
                seating: config.seating.clone(),
                booking: config.booking.clone(),
                verifier: None,
            };
            run(options, &format!("embedded, data in {}", data.display())).await
        }
        Command::Serve {
            service: ServiceName::Gateway,
            listen,
        } => run_gateway(&config, listen).await,
        Command::Serve { service, listen } => {
            let mut server = config.server.clone();
            if let Some(listen) = listen {
                server.listen = listen;
            }
            let options = Options {
                server,
                catalog: config.catalog.clone(),
                payments: config.payments.clone(),
                identity: config.identity.clone(),
                storage: external(&config)?,
                services: vec![service],
                seed_demo_data: false,
                seating: config.seating.clone(),
                booking: config.booking.clone(),
                verifier: None,
            };
            run(options, "distributed").await
        }
        Command::Migrate { data } => {
            let storage = match data {
                Some(data_dir) => Storage::Embedded { data_dir },
                None => external(&config)?,
            };
            marquee::migrate(&storage, ALL).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Seed { data } => {
            let storage = match data {
                Some(data_dir) => Storage::Embedded { data_dir },
                None => external(&config)?,
            };
            let seeded = marquee::seed(&storage, &config.catalog).await?;
            if seeded.is_empty() {
                println!("every service already holds data; nothing seeded");
            } else {
                println!("demo data loaded into: {seeded:?}");
            }
            Ok(())
        }
        Command::Admin {
            command:
                AdminCommand::Create {
                    email,
                    password_stdin: _,
                    data,
                },
        } => {
            let storage = match data {
                Some(data_dir) => Storage::Embedded { data_dir },
                None => external(&config)?,
            };
            let mut password = String::new();
            std::io::stdin()
                .read_line(&mut password)
                .context("--password-stdin: cannot read standard input")?;
            let password = password.trim_end_matches(['\r', '\n']);
            let user = marquee::create_admin(&storage, &config.identity, &email, password).await?;
            println!("admin {} created (id {})", user.email, user.id);
            Ok(())
        }
    };
    telemetry.shutdown();
    result
}

async fn run(mut options: Options, mode: &str) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(options.server.listen)
        .await
        .with_context(|| format!("server.listen: cannot bind {}", options.server.listen))?;
    let addr = listener.local_addr()?;
    // Seating reads shows from the catalog; in one process that is this very listener.
    if options.seating.catalog_url.is_none() && options.services.contains(&ServiceName::Catalog) {
        options.seating.catalog_url = Some(format!("http://{addr}"));
    }
    let builder = marquee::build(&options, addr).await?;
    println!("marquee is serving on {addr} ({mode}): gRPC and gRPC-Web");
    for name in builder.service_names() {
        println!("  {name}");
    }
    println!("  grpc.health.v1.Health");
    if options.server.reflection {
        println!("  grpc.reflection.v1.ServerReflection (and v1alpha)");
    }
    println!("try: grpcurl -plaintext {addr} marquee.catalog.v1.CatalogService/ListCities");
    println!(
        "     (the admin services need an admin token: see `marquee admin create` in README.md)"
    );
    builder
        .serve(listener, marquee_platform::server::shutdown_signal())
        .await
}

async fn run_gateway(config: &MarqueeConfig, listen: Option<SocketAddr>) -> anyhow::Result<()> {
    let keys = marquee_platform::CancellationToken::new();
    let _stop_refresh = keys.clone().drop_guard();
    let gateway = marquee::gateway(config, keys).await?;
    let addr = listen.unwrap_or(gateway.config().listen);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("gateway.listen: cannot bind {addr}"))?;
    let addr = listener.local_addr()?;
    println!("marquee gateway is serving on {addr}: gRPC and gRPC-Web, routing");
    for (service, endpoints) in &gateway.config().routes {
        println!("  {service} -> {}", endpoints.join(", "));
    }
    if let Some(dir) = &gateway.config().static_dir {
        println!("  web app from {}", dir.display());
    }
    gateway
        .serve(listener, marquee_platform::server::shutdown_signal())
        .await
}
