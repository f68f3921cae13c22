use std::net::SocketAddr;

use super::*;
use crate::agent::link;

#[test]
fn fingerprints_print_and_parse_in_the_usual_forms() {
    let fp = Fingerprint([0xAB; 32]);
    let shown = fp.to_string();
    assert_eq!(shown.len(), 32 * 3 - 1);
    assert!(shown.starts_with("AB:AB:"));
    assert_eq!(shown.parse::<Fingerprint>().unwrap(), fp);
    assert_eq!(
        shown
            .to_lowercase()
            .replace(':', "")
            .parse::<Fingerprint>()
            .unwrap(),
        fp
    );
    assert_eq!(
        format!("sha256:{shown}").parse::<Fingerprint>().unwrap(),
        fp
    );
    let err = "AB:CD".parse::<Fingerprint>().unwrap_err();
    assert!(err.contains("AB:CD"), "{err}");
}

#[test]
fn self_signed_identity_is_created_once_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let first = load_or_create(None, dir.path()).unwrap();
    assert!(first.created);
    let again = load_or_create(None, dir.path()).unwrap();
    assert!(!again.created);
    assert_eq!(
        first.fingerprint, again.fingerprint,
        "agents' pins survive a restart"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join(KEY_FILE))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o077,
        0,
        "the private key is readable by its owner only"
    );
}

#[test]
fn configured_pem_files_are_used_and_bad_ones_named() {
    let dir = tempfile::tempdir().unwrap();
    let generated = rcgen::generate_simple_self_signed(vec!["gw.example".into()]).unwrap();
    let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    std::fs::write(&cert, generated.cert.pem()).unwrap();
    std::fs::write(&key, generated.key_pair.serialize_pem()).unwrap();
    let id = load_or_create(Some((&cert, &key)), dir.path()).unwrap();
    assert_eq!(id.fingerprint, Fingerprint::of(generated.cert.der()));
    std::fs::write(&cert, "not pem").unwrap();
    let err = load_or_create(Some((&cert, &key)), dir.path())
        .unwrap_err()
        .to_string();
    assert!(err.contains("c.pem"), "{err}");
}

/// A real QUIC handshake over loopback; returns whether the client got connected.
async fn handshake(server: &ServerIdentity, trust: ServerTrust, name: &str) -> Result<(), String> {
    let server_ep = link::server_endpoint(server, None, "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = server_ep.local_addr().unwrap();
    let accept = tokio::spawn(async move {
        if let Some(incoming) = server_ep.accept().await {
            let _ = incoming.await;
        }
    });
    let client =
        link::client_endpoint(&trust, "127.0.0.1:0".parse::<SocketAddr>().unwrap()).unwrap();
    let result = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        client
            .connect(addr, name)
            .map_err(|e| e.to_string())?
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|_| "handshake timed out".to_string())?;
    accept.abort();
    result
}

#[tokio::test]
async fn agent_with_the_right_pin_connects_and_a_wrong_pin_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let id = load_or_create(None, dir.path()).unwrap();
    handshake(&id, ServerTrust::Pinned(id.fingerprint), "anything")
        .await
        .expect("pinned fingerprint matches");
    let other = Fingerprint([7; 32]);
    let err = handshake(&id, ServerTrust::Pinned(other), "anything")
        .await
        .unwrap_err();
    assert!(
        err.to_lowercase().contains("fingerprint") || err.contains("certificate"),
        "{err}"
    );
}

#[tokio::test]
async fn ca_trust_checks_the_chain_and_the_name() {
    let dir = tempfile::tempdir().unwrap();
    let id = load_or_create(None, dir.path()).unwrap();
    // The self-signed certificate is its own root; its name is "trunkgate".
    let roots = vec![id.chain[0].clone()];
    handshake(&id, ServerTrust::Ca(roots.clone()), "trunkgate")
        .await
        .expect("trusted root, right name");
    assert!(handshake(&id, ServerTrust::Ca(roots), "elsewhere.example")
        .await
        .is_err());
    let stranger = rcgen::generate_simple_self_signed(vec!["trunkgate".into()]).unwrap();
    let err = handshake(
        &id,
        ServerTrust::Ca(vec![stranger.cert.der().clone()]),
        "trunkgate",
    )
    .await;
    assert!(err.is_err(), "a certificate from another root is refused");
}
