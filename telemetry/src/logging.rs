//! Logs to stderr (journald picks them up under systemd), filtered by `PLD_LOG` (an
//! `EnvFilter` directive such as `info` or `pld_agent=debug,info`) and formatted as text or,
//! with `PLD_LOG_FORMAT=json`, one JSON object per line.

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{reload, EnvFilter, Registry};

/// Why logging could not be set up, or a new level not applied.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("{var}={value:?} is not a log filter ({reason}); try `info`, `debug` or `pld_agent=debug,info`")]
    Filter {
        var: &'static str,
        value: String,
        reason: String,
    },
    #[error("PLD_LOG_FORMAT={0:?} is not a log format; use `text` or `json`")]
    Format(String),
    #[error("a global logger is installed already")]
    AlreadySet,
    #[error("the logger is gone: {0}")]
    Reload(String),
}

/// Changes the running log filter.
#[derive(Clone)]
pub struct LogControl {
    handle: reload::Handle<EnvFilter, Registry>,
}

impl LogControl {
    /// Replaces the filter with `directive` (same syntax as `PLD_LOG`).
    ///
    /// # Errors
    /// [`LogError::Filter`] when the directive does not parse; the old filter stays.
    pub fn set(&self, source: &'static str, directive: &str) -> Result<(), LogError> {
        let filter = parse(source, directive)?;
        self.handle
            .reload(filter)
            .map_err(|e| LogError::Reload(e.to_string()))
    }
}

/// Checks a filter directive (a config file's `log` key) without applying it.
///
/// # Errors
/// [`LogError::Filter`] saying what does not parse.
pub fn check(source: &'static str, directive: &str) -> Result<(), LogError> {
    parse(source, directive).map(|_| ())
}

fn parse(var: &'static str, value: &str) -> Result<EnvFilter, LogError> {
    EnvFilter::builder()
        .parse(value)
        .map_err(|e| LogError::Filter {
            var,
            value: value.to_string(),
            reason: e.to_string(),
        })
}

/// Installs the global logger: filter from `PLD_LOG` (else `default`), format from
/// `PLD_LOG_FORMAT` (`text`, the default, or `json`).
///
/// # Errors
/// A [`LogError`] naming the variable whose value is wrong.
pub fn init(default: &str) -> Result<LogControl, LogError> {
    let filter = match std::env::var("PLD_LOG") {
        Ok(v) if !v.trim().is_empty() => parse("PLD_LOG", &v)?,
        _ => parse("default log filter", default)?,
    };
    let json = match std::env::var("PLD_LOG_FORMAT").as_deref() {
        Err(_) | Ok("") | Ok("text") => false,
        Ok("json") => true,
        Ok(other) => return Err(LogError::Format(other.to_string())),
    };
    let (filter, handle) = reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let installed = if json {
        registry.with(fmt.json()).try_init()
    } else {
        registry.with(fmt).try_init()
    };
    installed.map_err(|_| LogError::AlreadySet)?;
    Ok(LogControl { handle })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_filter_names_the_variable() {
        let e = parse("PLD_LOG", "pld=loud").unwrap_err();
        assert!(e.to_string().starts_with("PLD_LOG=\"pld=loud\""), "{e}");
    }

    #[test]
    fn good_filters_parse() {
        for f in [
            "info",
            "pld_agent=debug,info",
            "warn,pld_controller::node=trace",
        ] {
            parse("PLD_LOG", f).unwrap();
        }
    }
}
