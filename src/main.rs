use lark_mcp_server::cli::{self, Command, LarkArgs, SeedArgs};
use lark_mcp_server::commands;
use lark_mcp_server::lark::{LarkClient, LarkConfig};
use lark_mcp_server::sandbox::{Options, Sandbox, Seed};

fn init_logging() {
    // stdout is reserved for the protocol; logs go to stderr, filtered by RUST_LOG.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(filter)
        .init();
}

fn fail(code: i32, msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(code);
}

fn load_seed(args: &SeedArgs) -> Seed {
    match &args.seed {
        Some(path) => Seed::from_file(path),
        None => Seed::default_org(),
    }
    .unwrap_or_else(|e| fail(2, &e))
}

async fn start_sandbox(seed: Seed, options: Options, port: u16) -> Sandbox {
    Sandbox::start(seed, options, port)
        .await
        .unwrap_or_else(|e| fail(1, &format!("cannot bind 127.0.0.1:{port}: {e}")))
}

/// The client configuration, with an in-process sandbox when `--sandbox` is given.
async fn lark_config(args: &LarkArgs) -> (LarkConfig, Option<Sandbox>) {
    if !args.sandbox {
        let cfg = args.config(None).unwrap_or_else(|e| fail(2, &e.msg));
        return (cfg, None);
    }
    let seed = load_seed(&args.seed);
    let (app_id, secret) = (seed.app.app_id.clone(), seed.app.app_secret.clone());
    let sandbox = start_sandbox(seed, Options::default(), 0).await;
    let cfg = args
        .config(Some((&app_id, &secret, &sandbox.base_url())))
        .unwrap_or_else(|e| fail(2, &e.msg));
    (cfg, Some(sandbox))
}

#[tokio::main]
async fn main() {
    let cli = cli::parse();
    init_logging();
    match cli.command {
        Command::Sandbox(args) => {
            let seed = load_seed(&args.seed);
            let app_id = seed.app.app_id.clone();
            let sandbox = start_sandbox(seed, args.options.unwrap_or_default(), args.port).await;
            println!(
                "sandbox listening on {} (app_id {app_id})",
                sandbox.base_url()
            );
            tokio::select! {
                _ = sandbox.wait() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Command::Check(args) => {
            let (cfg, _sandbox) = lark_config(&args.lark).await;
            let client = LarkClient::new(cfg).unwrap_or_else(|e| fail(2, &e.msg));
            match commands::check::report(&client).await {
                Ok(text) => print!("{text}"),
                Err(e) => fail(1, &e.to_string()),
            }
        }
    }
}
