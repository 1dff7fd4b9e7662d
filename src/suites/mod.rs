//! Case implementations, registered by name. Suite definitions (which cases, parameters,
//! thresholds) are data in `suites/*.yaml`.

use crate::runner::CaseFn;

/// The implementation registered under `name`, if any.
pub fn lookup(name: &str) -> Option<CaseFn> {
    registry()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| f)
}

/// Every implemented case, by name.
pub fn registry() -> Vec<(&'static str, CaseFn)> {
    Vec::new()
}
