//! Compiles `proto/iam/events/v1` with protox (pure Rust: no `protoc`) and
//! writes, beside the generated code, a summary of the contract (every
//! message's fields with number, type and label, and every service method)
//! that a test compares with the committed `contract.txt`.

use std::fmt::Write as _;
use std::path::PathBuf;

const PROTO_ROOT: &str = "../../proto";
const FILES: [&str; 1] = ["iam/events/v1/events.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for file in FILES {
        println!("cargo:rerun-if-changed={PROTO_ROOT}/{file}");
    }
    let descriptors = protox::compile(FILES, [PROTO_ROOT])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("contract.txt"), summary(&descriptors))?;
    tonic_prost_build::configure()
        // Messages mirror the log's JSON events (camelCase), absent fields
        // taking their default, so an event's data reads straight into one.
        .message_attribute(
            ".iam.events.v1",
            "#[derive(serde::Serialize, serde::Deserialize)] #[serde(default, rename_all = \"camelCase\")]",
        )
        .enum_attribute(
            ".iam.events.v1",
            "#[derive(serde::Serialize, serde::Deserialize)] #[serde(rename_all = \"camelCase\")]",
        )
        .compile_fds(descriptors)?;
    Ok(())
}

/// One line per field and per method, sorted: what consumers rely on.
fn summary(descriptors: &prost_types::FileDescriptorSet) -> String {
    let mut lines = Vec::new();
    for file in &descriptors.file {
        let package = file.package();
        for message in &file.message_type {
            for field in &message.field {
                let oneof = field
                    .oneof_index
                    .map(|i| format!(" oneof {}", message.oneof_decl[i as usize].name()))
                    .unwrap_or_default();
                lines.push(format!(
                    "{package}.{}.{} = {} {:?} {:?}{} {}",
                    message.name(),
                    field.name(),
                    field.number(),
                    field.label(),
                    field.r#type(),
                    oneof,
                    field.type_name(),
                ));
            }
        }
        for service in &file.service {
            for method in &service.method {
                lines.push(format!(
                    "{package}.{}/{}({}) returns ({}{})",
                    service.name(),
                    method.name(),
                    method.input_type(),
                    if method.server_streaming() {
                        "stream "
                    } else {
                        ""
                    },
                    method.output_type(),
                ));
            }
        }
    }
    lines.sort();
    let mut text = String::new();
    for line in lines {
        let _ = writeln!(text, "{}", line.trim_end());
    }
    text
}
