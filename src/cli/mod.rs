//! The command line: parses arguments and hands over to the library.

use std::process::ExitCode;

pub async fn run() -> ExitCode {
    ExitCode::SUCCESS
}
