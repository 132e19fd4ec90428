//! What ships in `deploy/` agrees with the service: every variable it sets
//! for `iamd` is one the service reads, the probes ask paths the service
//! answers 200, the ports are the ones it listens on, and the image's
//! entrypoint is the `iamd` binary.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use iam_test_databases::Kind;
use serde_norway::Value;

use crate::support::spawn_app_with;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every variable `iamd` reads: the names its configuration asks for,
/// and the log filter.
fn variables_the_service_reads() -> BTreeSet<String> {
    let source =
        std::fs::read_to_string(root().join("services/iamd/src/configuration.rs")).unwrap();
    let mut names: BTreeSet<String> = source
        .split('"')
        .filter(|word| {
            (word.starts_with("IAM_") || word.starts_with("OTEL_"))
                && word.chars().all(|c| c.is_ascii_uppercase() || c == '_')
        })
        .map(str::to_owned)
        .collect();
    names.insert("RUST_LOG".to_owned());
    assert!(names.contains("IAM_DATABASE_URL") && names.contains("IAM_GRPC_LISTEN"));
    names
}

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    let mut value: Value = serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    value.apply_merge().unwrap();
    value
}

fn port_of(address: &str) -> u64 {
    address.rsplit(':').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn deploy_files_set_only_read_variables_probe_served_paths_and_run_iamd() {
    let known = variables_the_service_reads();
    let unknown = |names: &mut dyn Iterator<Item = String>, place: &str| {
        let unknown: Vec<String> = names.filter(|name| !known.contains(name)).collect();
        assert!(
            unknown.is_empty(),
            "{place} sets variables iamd does not read: {unknown:?}"
        );
    };

    // The image: built iamd as its entrypoint, variables it reads, its ports.
    let dockerfile = std::fs::read_to_string(root().join("deploy/Dockerfile")).unwrap();
    assert!(
        dockerfile.contains(r#"ENTRYPOINT ["/usr/local/bin/iamd"]"#),
        "the entrypoint is iamd"
    );
    assert!(dockerfile.contains("COPY --from=build /src/target/release/iamd /usr/local/bin/iamd"));
    assert!(dockerfile.contains("USER iam") && dockerfile.contains("HEALTHCHECK"));
    assert!(dockerfile.contains("/healthz") && dockerfile.contains("VOLUME"));
    let env_block: String = dockerfile
        .split("\nENV ")
        .nth(1)
        .unwrap()
        .split("\n\n")
        .next()
        .unwrap()
        .split("\nEXPOSE")
        .next()
        .unwrap()
        .to_owned();
    let image_env: Vec<(String, String)> = env_block
        .split_whitespace()
        .filter(|word| word.contains('='))
        .map(|word| {
            let (name, value) = word.split_once('=').unwrap();
            (name.to_owned(), value.to_owned())
        })
        .collect();
    unknown(
        &mut image_env.iter().map(|(name, _)| name.clone()),
        "the Dockerfile",
    );
    let exposed: BTreeSet<u64> = dockerfile
        .lines()
        .find(|line| line.starts_with("EXPOSE"))
        .unwrap()
        .split_whitespace()
        .skip(1)
        .map(|port| port.parse().unwrap())
        .collect();
    for (name, value) in &image_env {
        if name == "IAM_LISTEN" || name == "IAM_GRPC_LISTEN" {
            assert!(
                exposed.contains(&port_of(value)),
                "{name}={value} is exposed"
            );
        }
    }
    let ignored = std::fs::read_to_string(root().join(".dockerignore")).unwrap();
    assert!(ignored.lines().any(|line| line.trim() == "target/"));

    // The compose file: the iamd services' variables.
    let compose = yaml("deploy/compose.yaml");
    let services = compose["services"].as_mapping().unwrap();
    let mut iamd_services = 0;
    for (name, service) in services {
        let is_iamd = service["build"]["dockerfile"].as_str() == Some("deploy/Dockerfile");
        if !is_iamd {
            continue;
        }
        iamd_services += 1;
        let environment = service["environment"].as_mapping().unwrap();
        unknown(
            &mut environment
                .keys()
                .map(|key| key.as_str().unwrap().to_owned()),
            &format!("compose service {name:?}"),
        );
    }
    assert_eq!(iamd_services, 2, "two replicas");
    for wanted in ["postgres", "load-balancer", "otel-collector", "mail"] {
        assert!(services.contains_key(wanted), "compose runs {wanted}");
    }

    // Kubernetes: ConfigMap keys, the Deployment's variables, probes, ports.
    let config = yaml("deploy/kubernetes/configmap.yaml");
    let data = config["data"].as_mapping().unwrap();
    unknown(
        &mut data.keys().map(|key| key.as_str().unwrap().to_owned()),
        "the ConfigMap",
    );
    let deployment = yaml("deploy/kubernetes/deployment.yaml");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    unknown(
        &mut container["env"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|env| env["name"].as_str().unwrap().to_owned()),
        "the Deployment",
    );
    for env in container["env"].as_sequence().unwrap() {
        assert!(
            env["valueFrom"]["secretKeyRef"]["name"].as_str() == Some("iamd"),
            "secrets come from the Secret: {env:?}"
        );
    }
    let ports = container["ports"].as_sequence().unwrap();
    let port = |name: &str| {
        ports
            .iter()
            .find(|port| port["name"].as_str() == Some(name))
            .and_then(|port| port["containerPort"].as_u64())
            .unwrap()
    };
    let listen = data[&Value::from("IAM_LISTEN")].as_str().unwrap();
    let grpc = data[&Value::from("IAM_GRPC_LISTEN")].as_str().unwrap();
    assert_eq!(
        port("http"),
        port_of(listen),
        "the http port is IAM_LISTEN's"
    );
    assert_eq!(
        port("grpc"),
        port_of(grpc),
        "the grpc port is IAM_GRPC_LISTEN's"
    );
    assert!(container["resources"]["requests"]["memory"].is_string());
    let pdb = yaml("deploy/kubernetes/poddisruptionbudget.yaml");
    assert_eq!(pdb["kind"].as_str(), Some("PodDisruptionBudget"));
    let service = yaml("deploy/kubernetes/service.yaml");
    for port in service["spec"]["ports"].as_sequence().unwrap() {
        let target = port["targetPort"].as_str().unwrap();
        assert!(target == "http" || target == "grpc", "{port:?}");
    }

    // The probes ask what the service answers.
    let app = spawn_app_with(Kind::Sqlite, &[]).await;
    for probe in ["livenessProbe", "readinessProbe"] {
        let path = container[probe]["httpGet"]["path"].as_str().unwrap();
        assert_eq!(container[probe]["httpGet"]["port"].as_str(), Some("http"));
        assert_eq!(app.get(path).await.status(), 200, "{probe} {path}");
    }
}
