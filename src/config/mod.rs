//! Configuration: schema, loading and validation.
//!
//! Every problem is reported as `FILE:LINE:COLUMN: KEY: message`, whether serde found it (wrong
//! type, unknown key) or a later check did (a menu that does not exist, a missing prompt file),
//! so an operator can go straight to the line at fault.
mod loaded;
pub mod problem;
mod schema;
mod spans;

use std::fmt;
use std::path::{Path, PathBuf};

pub use loaded::{load_prompts, Loaded, SharedConfig};
pub use problem::Problem;
pub use schema::*;

/// The example configuration, built in: `trunkgate run` with no `--config` uses it.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../config.example.toml");

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    /// Dotted key path, e.g. `ivr.menus.main.options.1.menu`; empty when unknown.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        write!(f, "{}", self.message)
    }
}

/// All problems found in one file; never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Reads, parses and validates a configuration file. Relative paths inside it are resolved
/// against the file's directory.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            key: String::new(),
            message: format!("cannot read: {e}"),
        }])
    })?;
    let base = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let mut config = parse(&text, path, &base)?;
    config.file = Some(path.to_path_buf());
    Ok(config)
}

/// The embedded example configuration, with relative paths resolved against `base`.
pub fn embedded(base: &Path) -> Result<Config, ConfigErrors> {
    parse(
        EMBEDDED_DEFAULT,
        Path::new("<embedded config.example.toml>"),
        base,
    )
}

/// Parses and validates configuration text; `file` only names it in errors.
pub fn parse(text: &str, file: &Path, base: &Path) -> Result<Config, ConfigErrors> {
    let at = |span: Option<std::ops::Range<usize>>, key: String, message: String| {
        let (line, column) = span
            .map(|s| spans::line_col(text, s.start))
            .unwrap_or((1, 1));
        ConfigError {
            file: file.to_path_buf(),
            line,
            column,
            key,
            message,
        }
    };
    let mut config: Config = toml::from_str(text).map_err(|e| {
        let key = e
            .span()
            .map(|s| spans::path_at(text, s.start).join("."))
            .unwrap_or_default();
        ConfigErrors(vec![at(e.span(), key, e.message().trim().to_string())])
    })?;
    config.base_dir = base.to_path_buf();
    let mut problems = config.validate();
    if problems.is_empty() {
        problems = config.read_secrets();
    }
    if problems.is_empty() {
        return Ok(config);
    }
    Err(ConfigErrors(
        problems
            .into_iter()
            .map(|p| {
                let span = spans::span_of(text, &p.path);
                at(span, p.path.join("."), p.message)
            })
            .collect(),
    ))
}

#[cfg(test)]
mod tests;
