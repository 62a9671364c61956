//! Any config text — random, or the shipped example with bytes changed — is loaded or refused
//! with an error naming what is wrong; never a panic. (A stable stand-in for a cargo-fuzz target.)

use pld_controller::ControllerConfig;
use proptest::prelude::*;

const EXAMPLE: &str = include_str!("../../deploy/controller.toml");

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn random_text_is_refused_or_loaded(text in ".{0,400}") {
        if let Err(e) = ControllerConfig::from_toml(&text) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn a_mutated_example_is_refused_or_loaded(at in 0..EXAMPLE.len(), with in any::<char>()) {
        let mut text: Vec<char> = EXAMPLE.chars().collect();
        let at = at.min(text.len() - 1);
        text[at] = with;
        let text: String = text.into_iter().collect();
        if let Err(e) = ControllerConfig::from_toml(&text) {
            prop_assert!(!e.to_string().is_empty());
        }
    }
}
