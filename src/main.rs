//! The `reservoice` binary: parse the command line, run it, exit with its code.

use clap::Parser;

#[tokio::main]
async fn main() {
    // A .env file in the working directory supplies settings (flags and the
    // real environment still win). A missing file is fine.
    let _ = dotenvy::dotenv();
    let cli = reservoice::cli::Cli::parse();
    let code = reservoice::cli::run(cli).await;
    std::process::exit(code);
}
