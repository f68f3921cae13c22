//! What the packages install agrees with the daemon: the unit runs commands the binary has, the
//! packaged config is the example with installed paths, and the unit is locked down.
use std::process::Command;

use trunkgate_integration::{repo_root, trunkgate_bin};

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_root().join(path)).unwrap()
}

#[test]
fn unit_runs_the_binary_as_the_cli_expects() {
    let unit = read("systemd/trunkgate.service");
    let exec = |key: &str| -> Vec<String> {
        let line = unit
            .lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_else(|| panic!("no {key} in the unit"));
        line[key.len()..]
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    for key in ["ExecStartPre=", "ExecStart="] {
        let argv = exec(key);
        assert_eq!(argv[0], "/usr/bin/trunkgate");
        // The same subcommand and flags, pointed at the repository's packaged config, must work.
        let mut args: Vec<String> = argv[1..].to_vec();
        if args[0] == "run" {
            let help = Command::new(trunkgate_bin())
                .args(["run", "--help"])
                .output()
                .unwrap();
            assert!(String::from_utf8_lossy(&help.stdout).contains("--config"));
            continue;
        }
        let cfg = installed_config_with_repo_prompts();
        *args.last_mut().unwrap() = cfg.path().to_string_lossy().into_owned();
        let out = Command::new(trunkgate_bin()).args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "{key} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn installed_config_with_repo_prompts() -> tempfile::NamedTempFile {
    let text = read("packaging/trunkgate.toml").replace(
        "dir = \"/usr/share/trunkgate/prompts\"",
        &format!("dir = {:?}", repo_root().join("prompts").to_string_lossy()),
    );
    let f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(f.path(), text).unwrap();
    f
}

#[test]
fn packaged_config_is_the_example_with_installed_paths() {
    let example = read("config.example.toml");
    let packaged = read("packaging/trunkgate.toml");
    let settings = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
            .map(str::to_string)
            .collect()
    };
    let (a, b) = (settings(&example), settings(&packaged));
    let differing: Vec<(&String, &String)> = a.iter().zip(&b).filter(|(x, y)| x != y).collect();
    assert_eq!(a.len(), b.len());
    let installed_paths = vec![
        (
            "dir = \"prompts\"".to_string(),
            "dir = \"/usr/share/trunkgate/prompts\"".to_string(),
        ),
        (
            "state_dir = \"state\"".to_string(),
            "state_dir = \"/var/lib/trunkgate\"".to_string(),
        ),
        (
            "dir = \"state/journal-out\"".to_string(),
            "dir = \"/var/lib/trunkgate/journal-out\"".to_string(),
        ),
    ];
    let differing: Vec<(String, String)> = differing
        .into_iter()
        .map(|(a, b)| (a.clone(), b.clone()))
        .collect();
    assert_eq!(
        differing, installed_paths,
        "regenerate packaging/trunkgate.toml from config.example.toml"
    );
}

#[test]
fn unit_is_hardened() {
    let unit = read("systemd/trunkgate.service");
    for line in [
        "User=trunkgate",
        "StateDirectory=trunkgate",
        "ConfigurationDirectory=trunkgate",
        "RuntimeDirectory=trunkgate",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
    ] {
        assert!(unit.lines().any(|l| l == line), "the unit lacks {line}");
    }
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--threshold=20"])
        .arg(repo_root().join("systemd/trunkgate.service"))
        .output()
        .expect("systemd-analyze (package systemd) is installed");
    assert!(
        out.status.success(),
        "exposure above 2.0:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
