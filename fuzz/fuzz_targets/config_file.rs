//! Any text as a controller's or an agent's config file: loaded and checked, or refused with a
//! message, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pld_agent::config::AgentConfig;
use pld_controller::config::ControllerConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = ControllerConfig::from_toml(text) {
        let _ = config.validate();
    }
    if let Ok(config) = AgentConfig::from_toml(text) {
        let _ = config.validate();
    }
});
