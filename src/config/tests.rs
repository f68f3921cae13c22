use std::path::Path;

use super::*;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn errors(text: &str) -> Vec<ConfigError> {
    parse(text, Path::new("t.toml"), repo()).unwrap_err().0
}

#[test]
fn the_example_config_is_valid() {
    let c = load(&repo().join("config.example.toml")).unwrap();
    assert_eq!(c.trunks[0].name, "carrier");
    assert_eq!(
        c.trunks[0].route,
        crate::route::Destination::Ivr {
            menu: "main".into()
        }
    );
    assert!(c.trunks[0].accepts("127.0.0.1".parse().unwrap()));
    assert!(!c.trunks[0].accepts("192.0.2.1".parse().unwrap()));
    assert!(embedded(repo()).is_ok());
}

#[test]
fn unknown_key_names_file_line_column_and_key() {
    let text = EMBEDDED_DEFAULT.replace("jitter_min_ms = 20", "jitter_minimum_ms = 20");
    let e = &errors(&text)[0];
    let line = text
        .lines()
        .position(|l| l.starts_with("jitter_minimum_ms"))
        .unwrap()
        + 1;
    assert_eq!((e.line, e.column), (line, 1), "{e}");
    assert!(e.message.contains("jitter_minimum_ms"), "{e}");
    assert!(
        e.to_string().starts_with(&format!("t.toml:{line}:1: ")),
        "{e}"
    );
}

#[test]
fn wrong_type_names_the_key() {
    let text = EMBEDDED_DEFAULT.replace("rtp_port_min = 20000", "rtp_port_min = \"low\"");
    let e = &errors(&text)[0];
    let line = text
        .lines()
        .position(|l| l.starts_with("rtp_port_min"))
        .unwrap()
        + 1;
    assert_eq!(e.line, line, "{e}");
    assert_eq!(e.key, "media.rtp_port_min", "{e}");
}

#[test]
fn bad_cidr_is_refused_with_its_value() {
    let text = EMBEDDED_DEFAULT.replace("\"127.0.0.0/8\"", "\"127.0.0.0/33\"");
    let e = &errors(&text)[0];
    assert!(e.message.contains("127.0.0.0/33"), "{e}");
    assert!(e.key.starts_with("trunk.0.allow"), "{e}");
}

#[test]
fn semantic_problems_point_at_their_line() {
    let text = EMBEDDED_DEFAULT
        .replace("route = \"ivr:main\"", "route = \"ivr:nowhere\"")
        .replace(
            "\"9\" = { action = \"hangup\", prompt = \"goodbye\" }",
            "\"9\" = { action = \"goto\", menu = \"lost\" }",
        )
        .replace(
            "invalid_prompt = \"invalid\"\non_failure",
            "invalid_prompt = \"no-such-prompt\"\non_failure",
        );
    let errs = errors(&text);
    let find = |key: &str| {
        errs.iter()
            .find(|e| e.key.starts_with(key))
            .unwrap_or_else(|| panic!("no error for {key} in {errs:?}"))
    };
    let route_line = text.lines().position(|l| l.starts_with("route =")).unwrap() + 1;
    assert_eq!(find("trunk.0.route").line, route_line);
    let goto_line = text.lines().position(|l| l.starts_with("\"9\"")).unwrap() + 1;
    assert_eq!(find("ivr.menus.main.options.9").line, goto_line);
    assert!(find("ivr.menus.main.invalid_prompt")
        .message
        .contains("no-such-prompt"));
}

#[test]
fn rtp_range_and_jitter_bounds_are_checked() {
    let text = EMBEDDED_DEFAULT
        .replace("rtp_port_max = 29999", "rtp_port_max = 100")
        .replace("jitter_max_ms = 200", "jitter_max_ms = 5");
    let errs = errors(&text);
    assert!(
        errs.iter().any(|e| e.key == "media.rtp_port_min"),
        "{errs:?}"
    );
    assert!(
        errs.iter().any(|e| e.key == "media.jitter_max_ms"),
        "{errs:?}"
    );
}

#[test]
fn cidr_matching() {
    let c: Cidr = "10.1.0.0/16".parse().unwrap();
    assert!(c.contains("10.1.200.3".parse().unwrap()));
    assert!(!c.contains("10.2.0.1".parse().unwrap()));
    let v6: Cidr = "2001:db8::/32".parse().unwrap();
    assert!(v6.contains("2001:db8:1::5".parse().unwrap()));
    let host: Cidr = "192.0.2.7".parse().unwrap();
    assert!(host.contains("192.0.2.7".parse().unwrap()));
    assert!(!host.contains("192.0.2.8".parse().unwrap()));
    assert!(
        c.contains("::ffff:10.1.0.1".parse().unwrap()),
        "v4-mapped v6 matches v4 blocks"
    );
}

#[test]
fn an_s3_sink_without_its_bucket_or_with_half_its_credentials_is_refused_at_its_keys() {
    let text = format!(
        "{EMBEDDED_DEFAULT}\n[[journal.sink]]\nname = \"archive\"\ntype = \"s3\"\n\
         prefix = \"/trunkgate//\"\naccess_key_id = \"AKID\"\nendpoint = \"s3.example.net\"\n"
    );
    let errs = errors(&text);
    let find = |key: &str| {
        errs.iter()
            .find(|e| e.key.ends_with(key))
            .unwrap_or_else(|| panic!("no error for {key} in {errs:?}"))
    };
    assert!(find("bucket").message.contains("needs its bucket"));
    assert!(find("prefix").message.contains("non-empty parts"));
    assert!(find("access_key_id")
        .message
        .contains("secret_access_key_file"));
    assert!(find("endpoint").message.contains("https://"));
    let line = |needle: &str| text.lines().position(|l| l.starts_with(needle)).unwrap() + 1;
    assert_eq!(find("prefix").line, line("prefix ="));
    assert_eq!(find("access_key_id").line, line("access_key_id ="));
}

#[test]
fn tls_and_srtp_settings_that_cannot_work_are_refused_by_key() {
    let text = EMBEDDED_DEFAULT
        .replace("# srtp = \"required\"", "srtp = \"required\"")
        .replace("# tls_client_ca =", "tls_client_ca =");
    let keys: Vec<String> = errors(&text).into_iter().map(|e| e.key).collect();
    assert!(keys.contains(&"trunk.0.srtp".to_string()), "{keys:?}");
    assert!(
        keys.contains(&"trunk.0.tls_client_ca".to_string()),
        "{keys:?}"
    );
    let listener_only = EMBEDDED_DEFAULT.replace("# tls = [", "tls = [");
    let e = &errors(&listener_only)[0];
    assert_eq!(e.key, "sip.tls", "{e}");
    assert!(e.message.contains("tls_certificate"), "{e}");
    let misspelt = EMBEDDED_DEFAULT.replace("# srtp = \"required\"", "srtp = \"mandatory\"");
    let e = &errors(&misspelt)[0];
    assert_eq!(e.key, "trunk.0.srtp", "{e}");
    assert!(e.message.contains("required"), "{e}");
}

#[test]
fn registration_settings_that_cannot_work_are_refused_by_key() {
    let register =
        |extra: &str| EMBEDDED_DEFAULT.replace("ring_ms = 0\n", &format!("ring_ms = 0\n{extra}\n"));
    let no_credentials = register("[trunk.register]\nregistrar = \"sip:carrier.example\"");
    assert_eq!(errors(&no_credentials)[0].key, "trunk.0.register");
    let bad_registrar = register(
        "[trunk.credentials]\nusername = \"b\"\npassword = \"p\"\n\
         [trunk.register]\nregistrar = \"carrier.example\"",
    );
    assert_eq!(errors(&bad_registrar)[0].key, "trunk.0.register.registrar");
    let both =
        register("[trunk.credentials]\nusername = \"b\"\npassword = \"p\"\npassword_file = \"x\"");
    assert_eq!(errors(&both)[0].key, "trunk.0.credentials");
    let pinned_and_ca = register("tls_ca = \"ca.pem\"\ntls_fingerprint = \"AB\"");
    let keys: Vec<String> = errors(&pinned_and_ca).into_iter().map(|e| e.key).collect();
    assert!(
        keys.iter().all(|k| k == "trunk.0.tls_fingerprint"),
        "{keys:?}"
    );
    assert_eq!(keys.len(), 2, "both set, and not a fingerprint: {keys:?}");

    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("carrier.password");
    std::fs::write(&file, "s3cret\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let from_file = register(&format!(
        "[trunk.credentials]\nusername = \"b\"\npassword_file = {:?}",
        file.display().to_string()
    ));
    let e = &errors(&from_file)[0];
    assert_eq!(e.key, "trunk.0.credentials.password_file", "{e}");
    assert!(e.message.contains("chmod 600"), "{e}");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = parse(&from_file, Path::new("t.toml"), repo()).unwrap();
    let credentials = config.trunks[0].credentials.as_ref().unwrap();
    assert_eq!(credentials.secret(), "s3cret", "read, without its newline");
    assert!(
        !format!("{config:?}").contains("s3cret"),
        "never in Debug output"
    );
}

#[test]
fn recording_settings_that_cannot_work_are_refused_by_key() {
    let queue = EMBEDDED_DEFAULT
        .lines()
        .find(|l| l.starts_with("[queues."))
        .expect("the example has a queue")
        .trim_matches(['[', ']']);
    let text = format!(
        "{EMBEDDED_DEFAULT}\n[recording]\npublic_key = \"age1notakey\"\nbitrate = 4000\n\n\
         [{queue}.recording]\npolicy = \"sampled\"\nprompt = \"no-such-prompt\"\n"
    );
    let errs = errors(&text);
    let find = |key: &str| {
        errs.iter()
            .find(|e| e.key.ends_with(key))
            .unwrap_or_else(|| panic!("no error for {key} in {errs:?}"))
    };
    let line = |needle: &str| text.lines().position(|l| l.starts_with(needle)).unwrap() + 1;
    assert_eq!(find("recording.public_key").line, line("public_key ="));
    assert!(find("bitrate").message.contains("4000"));
    assert!(find("recording.percent").message.contains("percent"));
    assert_eq!(find("recording.prompt").line, line("prompt ="));
    assert!(find("recording.prompt").message.contains("no-such-prompt"));

    // A policy that would record, with nowhere to seal recordings to.
    let text = format!("{EMBEDDED_DEFAULT}\n[{queue}.recording]\npolicy = \"always\"\n");
    let errs = errors(&text);
    assert!(
        errs.iter()
            .any(|e| e.key.ends_with("recording.policy") && e.message.contains("public_key")),
        "{errs:?}"
    );
}
