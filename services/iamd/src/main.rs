//! `iamd`: reads its configuration from the environment and runs the service.

use std::process::ExitCode;

use iamd::configuration::Settings;
use iamd::startup::Application;
use iamd::telemetry;

/// mimalloc rather than the system allocator: under load glibc's malloc and
/// free took a tenth of the request threads' time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("iamd: {error}");
            return ExitCode::FAILURE;
        }
    };
    let telemetry = match telemetry::init(settings.otlp_endpoint.as_deref(), settings.log_format) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("iamd: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match Application::build(settings).await {
        Ok(application) => application.run_until_stopped().await,
        Err(error) => Err(error),
    };
    telemetry.shutdown();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("iamd: {error:#}");
            ExitCode::FAILURE
        }
    }
}
