//! A problem found after parsing, located by key path: the one type every stage's validation
//! returns. A leaf module (it imports nothing from the crate), so a stage can report problems
//! without importing the configuration hub that imports it.

/// A problem found after parsing: where (key path) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: Vec<String>,
    pub message: String,
}

impl Problem {
    pub fn at(path: &[&str], message: String) -> Problem {
        Problem {
            path: path.iter().map(|s| s.to_string()).collect(),
            message,
        }
    }
}
