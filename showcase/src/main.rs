//! `cargo run -p cacheward-showcase`: the service, configured from the environment
//! (see `cacheward_showcase::config`).

use cacheward::Cache;
use cacheward_showcase::{App, Config, init_tracing, shutdown_signal};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_tracing();
    let config = Config::from_env()?;
    let cache = Cache::from_env();
    let app = App::new(&config, cache).await?;
    let listener = tokio::net::TcpListener::bind(config.addr).await?;
    tracing::info!(
        addr = %listener.local_addr()?,
        database = app.db.kind().as_str(),
        cache = %app.cache.backend(),
        rate_limit_per_minute = config.rate_limit_per_minute,
        "cacheward-showcase listening"
    );
    app.serve(listener, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}
