use lark_mcp_server::cli::{self, Command};
use lark_mcp_server::sandbox::{Sandbox, Seed};

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

#[tokio::main]
async fn main() {
    let cli = cli::parse();
    init_logging();
    match cli.command {
        Command::Sandbox(args) => {
            let seed = match &args.seed {
                Some(path) => Seed::from_file(path),
                None => Seed::default_org(),
            }
            .unwrap_or_else(|e| fail(2, &e));
            let app_id = seed.app.app_id.clone();
            let sandbox = Sandbox::start(seed, args.options.unwrap_or_default(), args.port)
                .await
                .unwrap_or_else(|e| fail(1, &format!("cannot bind 127.0.0.1:{}: {e}", args.port)));
            println!(
                "sandbox listening on {} (app_id {app_id})",
                sandbox.base_url()
            );
            tokio::select! {
                _ = sandbox_wait(sandbox) => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
    }
}

async fn sandbox_wait(sandbox: Sandbox) {
    sandbox.wait().await
}
