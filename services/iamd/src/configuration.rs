//! Settings from the environment (see `SPEC.md` §3 and the README).

use std::env::{self, VarError};
use std::time::Duration;

/// Everything `iamd` reads from its environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to bind (`IAM_LISTEN`); port 0 picks a free port.
    pub listen: String,
    /// `sqlite://PATH` or `postgres://...` (`IAM_DATABASE_URL`).
    pub database_url: String,
    /// Lifetime of a login session (`IAM_SESSION_TTL_SECS`).
    pub session_ttl: Duration,
    /// Where traces go over OTLP (`OTEL_EXPORTER_OTLP_ENDPOINT`); `None`: nowhere.
    pub otlp_endpoint: Option<String>,
    /// `/readyz` answers 503 while a projector is more than this many
    /// events behind the log (`IAM_READY_MAX_LAG`).
    pub ready_max_lag: u64,
    /// What a first start creates.
    pub bootstrap: Bootstrap,
    /// The length of a token lifetime "day" (`IAM_TOKEN_DAY_SECS`, default
    /// 86400). Only tests shorten it, so that expiry is tested in seconds.
    pub token_day: Duration,
    /// How often expired tokens are recorded as such (`IAM_TOKEN_SWEEP_SECS`).
    pub token_sweep_interval: Duration,
    /// The proxies whose `X-Forwarded-For` is believed
    /// (`IAM_TRUSTED_PROXIES`: addresses or CIDR ranges, comma-separated).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// How failed logins are throttled.
    pub login_limits: crate::throttle::LoginLimits,
    /// The SMTP relay of password-reset mail (`IAM_SMTP_URL`); `None`:
    /// reset by e-mail is off.
    pub smtp_url: Option<Secret>,
    /// The sender of that mail (`IAM_MAIL_FROM`).
    pub mail_from: String,
    /// The service's external base URL, for links in mail
    /// (`IAM_PUBLIC_URL`); `None`: `http://` and the bound address.
    pub public_url: Option<String>,
    /// Where the gRPC change feed listens (`IAM_GRPC_LISTEN`); `None`: off.
    pub grpc_listen: Option<String>,
    /// How log lines are written (`IAM_LOG_FORMAT`: `text` or `json`).
    pub log_format: crate::telemetry::LogFormat,
}

pub use iam_app::bootstrap::{Bootstrap, Secret};

/// A setting that cannot be used; the message names the variable.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The variable is set but is not valid UTF-8.
    #[error("{0} is not valid UTF-8")]
    NotUnicode(&'static str),
    /// The variable's value is not one the service understands.
    #[error("{variable} is invalid: {reason}")]
    Invalid {
        /// The variable.
        variable: &'static str,
        /// What is wrong, and what is expected.
        reason: String,
    },
}

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
const DEFAULT_DATABASE_URL: &str = "sqlite://data/iam.db";
const DEFAULT_SESSION_TTL_SECS: u64 = 900;
const DEFAULT_READY_MAX_LAG: u64 = 1000;
const DEFAULT_MAIL_FROM: &str = "iam@localhost.localdomain";

impl Settings {
    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(env::var)
    }

    /// Reads the settings through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(
        lookup: impl Fn(&'static str) -> Result<String, VarError>,
    ) -> Result<Self, SettingsError> {
        let get = |name: &'static str| match lookup(name) {
            Ok(value) if value.trim().is_empty() => Ok(None),
            Ok(value) => Ok(Some(value.trim().to_owned())),
            Err(VarError::NotPresent) => Ok(None),
            Err(VarError::NotUnicode(_)) => Err(SettingsError::NotUnicode(name)),
        };
        let database_url = get("IAM_DATABASE_URL")?.unwrap_or_else(|| DEFAULT_DATABASE_URL.into());
        if iam_eventstore::Backend::of_url(&database_url).is_none() {
            return Err(SettingsError::Invalid {
                variable: "IAM_DATABASE_URL",
                reason:
                    "expected `sqlite://PATH` (embedded) or `postgres://USER@HOST:PORT/DATABASE`"
                        .into(),
            });
        }
        Ok(Self {
            listen: get("IAM_LISTEN")?.unwrap_or_else(|| DEFAULT_LISTEN.into()),
            database_url,
            // A stolen session must not outlive a day.
            session_ttl: Duration::from_secs(at_most(
                "IAM_SESSION_TTL_SECS",
                positive(
                    "IAM_SESSION_TTL_SECS",
                    get("IAM_SESSION_TTL_SECS")?,
                    DEFAULT_SESSION_TTL_SECS,
                )?,
                DAY_SECS,
            )?),
            otlp_endpoint: get("OTEL_EXPORTER_OTLP_ENDPOINT")?,
            ready_max_lag: positive(
                "IAM_READY_MAX_LAG",
                get("IAM_READY_MAX_LAG")?,
                DEFAULT_READY_MAX_LAG,
            )?,
            bootstrap: bootstrap(&get)?,
            // A "day" may be shortened for tests, never lengthened: token
            // lifetimes stay within 365 real days.
            token_day: Duration::from_secs(at_most(
                "IAM_TOKEN_DAY_SECS",
                positive("IAM_TOKEN_DAY_SECS", get("IAM_TOKEN_DAY_SECS")?, DAY_SECS)?,
                DAY_SECS,
            )?),
            token_sweep_interval: Duration::from_secs(at_most(
                "IAM_TOKEN_SWEEP_SECS",
                positive("IAM_TOKEN_SWEEP_SECS", get("IAM_TOKEN_SWEEP_SECS")?, 60)?,
                DAY_SECS,
            )?),
            trusted_proxies: trusted_proxies(get("IAM_TRUSTED_PROXIES")?)?,
            login_limits: crate::throttle::LoginLimits {
                per_name: at_most(
                    "IAM_LOGIN_MAX_FAILURES",
                    positive("IAM_LOGIN_MAX_FAILURES", get("IAM_LOGIN_MAX_FAILURES")?, 5)?,
                    u64::from(u32::MAX),
                )? as u32,
                per_address: at_most(
                    "IAM_LOGIN_MAX_FAILURES_PER_ADDRESS",
                    positive(
                        "IAM_LOGIN_MAX_FAILURES_PER_ADDRESS",
                        get("IAM_LOGIN_MAX_FAILURES_PER_ADDRESS")?,
                        50,
                    )?,
                    u64::from(u32::MAX),
                )? as u32,
                lockout: Duration::from_secs(at_most(
                    "IAM_LOGIN_LOCKOUT_SECS",
                    positive(
                        "IAM_LOGIN_LOCKOUT_SECS",
                        get("IAM_LOGIN_LOCKOUT_SECS")?,
                        300,
                    )?,
                    DAY_SECS,
                )?),
            },
            smtp_url: get("IAM_SMTP_URL")?.map(Secret::new),
            mail_from: mail_from(get("IAM_MAIL_FROM")?)?,
            public_url: public_url(get("IAM_PUBLIC_URL")?)?,
            grpc_listen: get("IAM_GRPC_LISTEN")?,
            log_format: match get("IAM_LOG_FORMAT")?.as_deref() {
                None | Some("text") => crate::telemetry::LogFormat::Text,
                Some("json") => crate::telemetry::LogFormat::Json,
                Some(other) => {
                    return Err(SettingsError::Invalid {
                        variable: "IAM_LOG_FORMAT",
                        reason: format!("expected `text` or `json`, got `{other}`"),
                    });
                }
            },
        })
    }
}

/// `IAM_MAIL_FROM`: a mail address.
fn mail_from(value: Option<String>) -> Result<String, SettingsError> {
    let Some(value) = value else {
        return Ok(DEFAULT_MAIL_FROM.to_owned());
    };
    value
        .parse::<lettre::message::Mailbox>()
        .map_err(|_| SettingsError::Invalid {
            variable: "IAM_MAIL_FROM",
            reason: format!("`{value}` is not a mail address (e.g. iam@example.com)"),
        })?;
    Ok(value)
}

/// `IAM_PUBLIC_URL`: an `http` or `https` URL, kept without a trailing `/`.
fn public_url(value: Option<String>) -> Result<Option<String>, SettingsError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let lower = value.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"));
    if rest.is_none_or(|rest| rest.is_empty() || rest.contains(['?', '#', ' '])) {
        return Err(SettingsError::Invalid {
            variable: "IAM_PUBLIC_URL",
            reason: format!(
                "`{value}` is not a base URL (e.g. https://iam.example.com or http://127.0.0.1:8080)"
            ),
        });
    }
    Ok(Some(value.trim_end_matches('/').to_owned()))
}

/// `IAM_TRUSTED_PROXIES`: addresses (one host each) or CIDR ranges.
fn trusted_proxies(value: Option<String>) -> Result<Vec<ipnet::IpNet>, SettingsError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.parse::<ipnet::IpNet>()
                .or_else(|_| item.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| SettingsError::Invalid {
                    variable: "IAM_TRUSTED_PROXIES",
                    reason: format!(
                        "`{item}` is neither an address nor a CIDR range (e.g. 10.0.0.0/8, 192.0.2.7)"
                    ),
                })
        })
        .collect()
}

fn bootstrap(
    get: &impl Fn(&'static str) -> Result<Option<String>, SettingsError>,
) -> Result<Bootstrap, SettingsError> {
    let admin_email = get("IAM_BOOTSTRAP_ADMIN_EMAIL")?;
    if let Some(email) = &admin_email {
        iam_domain::Email::parse(email).map_err(|error| SettingsError::Invalid {
            variable: "IAM_BOOTSTRAP_ADMIN_EMAIL",
            reason: error.to_string(),
        })?;
    }
    let admin_password = get("IAM_BOOTSTRAP_ADMIN_PASSWORD")?;
    if let Some(password) = &admin_password {
        iam_app::credentials::check_password(password).map_err(|reason| {
            SettingsError::Invalid {
                variable: "IAM_BOOTSTRAP_ADMIN_PASSWORD",
                reason,
            }
        })?;
    }
    Ok(Bootstrap {
        admin_email,
        admin_password: admin_password.map(Secret::new),
        org_name: get("IAM_BOOTSTRAP_ORG_NAME")?.unwrap_or_else(|| "Provider".to_owned()),
    })
}

/// Seconds in a day: the longest token "day" and sweep interval.
const DAY_SECS: u64 = 86_400;

fn at_most(variable: &'static str, value: u64, max: u64) -> Result<u64, SettingsError> {
    if value > max {
        return Err(SettingsError::Invalid {
            variable,
            reason: format!("expected at most {max}, got {value}"),
        });
    }
    Ok(value)
}

fn positive(
    variable: &'static str,
    value: Option<String>,
    default: u64,
) -> Result<u64, SettingsError> {
    let Some(value) = value else {
        return Ok(default);
    };
    match value.parse::<u64>() {
        Ok(number) if number > 0 => Ok(number),
        _ => Err(SettingsError::Invalid {
            variable,
            reason: format!("expected a whole number greater than 0, got `{value}`"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(vars: &[(&'static str, &str)]) -> Result<Settings, SettingsError> {
        let vars: HashMap<&str, String> = vars.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        Settings::from_lookup(|name| vars.get(name).cloned().ok_or(VarError::NotPresent))
    }

    #[test]
    fn defaults_follow_the_spec() {
        let settings = settings(&[]).unwrap();
        assert_eq!(settings.listen, "127.0.0.1:8080");
        assert_eq!(settings.database_url, "sqlite://data/iam.db");
        assert_eq!(settings.session_ttl, Duration::from_secs(900));
        assert_eq!(settings.otlp_endpoint, None);
    }

    #[test]
    fn a_session_lives_at_most_a_day() {
        assert!(settings(&[("IAM_SESSION_TTL_SECS", "86400")]).is_ok());
        let error = settings(&[("IAM_SESSION_TTL_SECS", "86401")])
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("IAM_SESSION_TTL_SECS is invalid"),
            "{error}"
        );
    }

    #[test]
    fn trusted_proxies_are_addresses_or_ranges_and_nothing_else() {
        assert!(settings(&[]).unwrap().trusted_proxies.is_empty());
        let proxies = settings(&[("IAM_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.7,,::1")])
            .unwrap()
            .trusted_proxies;
        let shown: Vec<String> = proxies.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["10.0.0.0/8", "192.0.2.7/32", "::1/128"]);
        let error = settings(&[("IAM_TRUSTED_PROXIES", "10.0.0.0/8, proxy.local")])
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("IAM_TRUSTED_PROXIES is invalid: `proxy.local`"),
            "{error}"
        );
    }

    #[test]
    fn an_unknown_database_scheme_is_refused_naming_the_variable() {
        let error = settings(&[("IAM_DATABASE_URL", "mysql://x")])
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("IAM_DATABASE_URL is invalid"), "{error}");
        assert!(
            !error.contains("mysql://x"),
            "the URL may hold a password: {error}"
        );
    }

    #[test]
    fn a_session_lifetime_must_be_a_positive_number() {
        for bad in ["0", "-5", "ten"] {
            let error = settings(&[("IAM_SESSION_TTL_SECS", bad)])
                .unwrap_err()
                .to_string();
            assert!(
                error.starts_with("IAM_SESSION_TTL_SECS is invalid"),
                "{error}"
            );
        }
    }

    #[test]
    fn a_token_day_may_be_shortened_for_tests_but_never_lengthened() {
        let settings_with = |value| settings(&[("IAM_TOKEN_DAY_SECS", value)]);
        assert_eq!(
            settings_with("1").unwrap().token_day,
            Duration::from_secs(1)
        );
        assert_eq!(
            settings(&[]).unwrap().token_day,
            Duration::from_secs(86_400)
        );
        for bad in ["86401", "18446744073709551615", "0"] {
            let error = settings_with(bad).unwrap_err().to_string();
            assert!(
                error.starts_with("IAM_TOKEN_DAY_SECS is invalid"),
                "{error}"
            );
        }
        let error = settings(&[("IAM_TOKEN_SWEEP_SECS", "86401")])
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("IAM_TOKEN_SWEEP_SECS is invalid"),
            "{error}"
        );
    }

    #[test]
    fn the_bootstrap_password_is_checked_and_never_shown() {
        let error = settings(&[("IAM_BOOTSTRAP_ADMIN_PASSWORD", "short")])
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("IAM_BOOTSTRAP_ADMIN_PASSWORD is invalid"),
            "{error}"
        );
        let settings = settings(&[("IAM_BOOTSTRAP_ADMIN_PASSWORD", "long enough secret")]).unwrap();
        assert!(!format!("{settings:?}").contains("long enough secret"));
    }

    #[test]
    fn a_non_unicode_value_names_the_variable() {
        let error = Settings::from_lookup(|name| {
            if name == "IAM_DATABASE_URL" {
                Err(VarError::NotUnicode(std::ffi::OsString::from("x")))
            } else {
                Err(VarError::NotPresent)
            }
        })
        .unwrap_err();
        assert_eq!(error.to_string(), "IAM_DATABASE_URL is not valid UTF-8");
    }
}
