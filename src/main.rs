use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    puebla::cli::run().await
}
