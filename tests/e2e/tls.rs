//! HTTPS on the client-facing listener (`[tls]`): a real server in each mode, reached by a
//! rustls client that trusts only what the mode says and sends the SNI the osu! client
//! sends (`c.<domain>`, `osu.<domain>`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use peace::config::TlsMode;
use peace_bancho::ServerPacket;
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::cluster::free_port;
use crate::common::{self, PASSWORD, TestServer};

/// The server's domain in these tests (`[http] domain`'s default).
const DOMAIN: &str = "peace.local";

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn roots_from(pem_file: &Path) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(pem_file).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    roots
}

/// Connects to `addr` over TLS as `sni`, trusting only `roots`.
async fn connect(
    addr: SocketAddr,
    sni: &str,
    roots: RootCertStore,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(addr).await?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from(sni.to_owned()).unwrap(), tcp)
        .await
}

/// One HTTP/1.1 request over TLS (`Connection: close`), as the osu! client would send it.
async fn https(
    addr: SocketAddr,
    sni: &str,
    roots: RootCertStore,
    method: &str,
    path: &str,
    body: &[u8],
) -> std::io::Result<Response> {
    let mut stream = connect(addr, sni, roots).await?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {sni}\r\nUser-Agent: osu!\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    let mut raw = Vec::new();
    // Some servers end a TLS connection without close_notify; what was read counts.
    if let Err(e) = stream.read_to_end(&mut raw).await
        && raw.is_empty()
    {
        return Err(e);
    }
    Ok(parse_response(&raw))
}

fn parse_response(raw: &[u8]) -> Response {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = std::str::from_utf8(&raw[..split]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size_text = std::str::from_utf8(&data[..line_end]).unwrap();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

fn tls_addr(server: &TestServer) -> SocketAddr {
    server
        .server
        .as_ref()
        .unwrap()
        .tls_addr
        .expect("an HTTPS listener")
}

/// A bancho login over HTTPS to `c.<domain>`, as the client does it; the player's id.
async fn login_over_https(addr: SocketAddr, roots: RootCertStore, name: &str) -> i32 {
    let body = common::login_body(name, PASSWORD, "b20240101.1");
    let response = https(
        addr,
        &format!("c.{DOMAIN}"),
        roots,
        "POST",
        "/",
        body.as_bytes(),
    )
    .await
    .unwrap();
    assert_eq!(response.status, 200);
    let token = response.header("cho-token").expect("a cho-token header");
    assert_ne!(token, "no");
    common::decode(&response.body)
        .iter()
        .find_map(|p| match p {
            ServerPacket::UserId(u) => Some(u.user_id),
            _ => None,
        })
        .expect("a user id")
}

async fn health(addr: SocketAddr, sni: &str, roots: RootCertStore) -> std::io::Result<u16> {
    Ok(https(addr, sni, roots, "GET", "/api/v1/health", b"")
        .await?
        .status)
}

#[tokio::test]
async fn local_ca_serves_the_client_names_to_a_client_that_trusts_only_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let tls_dir = dir.path().join("tls");
    let mut server = TestServer::start_with(|c| {
        c.tls.mode = TlsMode::LocalCa;
        c.tls.addr = "127.0.0.1:0".into();
        c.tls.dir = tls_dir.display().to_string();
    })
    .await;
    let ca = tls_dir.join(peace_tls::CA_CERT_FILE);
    let addr = tls_addr(&server);

    // Registered over plain HTTP (the listener is unchanged), logged in over HTTPS.
    let response = server
        .register("Secure", "secure@example.com", PASSWORD, false)
        .await;
    assert_eq!(response.status(), 200);
    assert!(login_over_https(addr, roots_from(&ca), "Secure").await > 0);
    for name in peace_tls::client_names(DOMAIN) {
        assert_eq!(
            health(addr, &name, roots_from(&ca)).await.unwrap(),
            200,
            "{name}"
        );
    }
    // No ACME order is open: the challenge path answers nothing.
    let response = https(
        addr,
        &format!("osu.{DOMAIN}"),
        roots_from(&ca),
        "GET",
        "/.well-known/acme-challenge/token",
        b"",
    )
    .await
    .unwrap();
    assert_eq!(response.status, 404);

    // A client that does not trust the CA refuses the server.
    let other = tempfile::tempdir().unwrap();
    let (other_ca, _) = self_signed_ca(other.path(), "Someone else");
    assert!(
        health(addr, &format!("c.{DOMAIN}"), roots_from(&other_ca))
            .await
            .is_err()
    );

    // Garbage instead of a handshake closes that connection and holds nothing else.
    let mut garbage = TcpStream::connect(addr).await.unwrap();
    garbage.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let mut sink = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), garbage.read_to_end(&mut sink)).await;
    assert!(
        closed.is_ok(),
        "a client that does not speak TLS is dropped"
    );
    let _silent = TcpStream::connect(addr).await.unwrap();
    assert_eq!(
        health(addr, &format!("c.{DOMAIN}"), roots_from(&ca))
            .await
            .unwrap(),
        200
    );

    // A restart reuses the CA the clients trust.
    let ca_before = std::fs::read(&ca).unwrap();
    server.restart().await;
    assert_eq!(std::fs::read(&ca).unwrap(), ca_before);
    assert_eq!(
        health(tls_addr(&server), &format!("c.{DOMAIN}"), roots_from(&ca))
            .await
            .unwrap(),
        200
    );
}

/// A CA (certificate file, issuer) made in `dir`.
fn self_signed_ca(
    dir: &Path,
    name: &str,
) -> (std::path::PathBuf, rcgen::Issuer<'static, rcgen::KeyPair>) {
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let path = dir.join(format!("{}.crt", name.replace(' ', "-")));
    std::fs::write(&path, cert.pem()).unwrap();
    (path, rcgen::Issuer::new(params, key))
}

/// A certificate chain and key for the client names, signed by `ca`, as PEM.
fn leaf(ca: &rcgen::Issuer<'static, rcgen::KeyPair>, names: Vec<String>) -> (String, String) {
    let mut params = rcgen::CertificateParams::new(names).unwrap();
    params.use_authority_key_identifier_extension = true;
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, ca).unwrap();
    (cert.pem(), key.serialize_pem())
}

#[tokio::test]
async fn files_serve_the_operators_certificate_and_reload_it_when_it_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (first_ca, first_issuer) = self_signed_ca(dir.path(), "First CA");
    let (second_ca, second_issuer) = self_signed_ca(dir.path(), "Second CA");
    let (cert, key) = (dir.path().join("chain.pem"), dir.path().join("key.pem"));
    let (chain_pem, key_pem) = leaf(&first_issuer, peace_tls::client_names(DOMAIN));
    std::fs::write(&cert, chain_pem).unwrap();
    std::fs::write(&key, key_pem).unwrap();
    let server = TestServer::start_with(|c| {
        c.tls.mode = TlsMode::Files;
        c.tls.addr = "127.0.0.1:0".into();
        c.tls.dir = dir.path().join("tls").display().to_string();
        c.tls.cert = cert.display().to_string();
        c.tls.key = key.display().to_string();
    })
    .await;
    let addr = tls_addr(&server);
    server.player("Filed").await;
    assert!(login_over_https(addr, roots_from(&first_ca), "Filed").await > 0);

    // A broken file is refused and the certificate in use stays.
    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nbroken\n").unwrap();
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        health(addr, &format!("osu.{DOMAIN}"), roots_from(&first_ca))
            .await
            .unwrap(),
        200
    );

    // The operator renews with another CA: served without a restart.
    let (chain_pem, key_pem) = leaf(&second_issuer, peace_tls::client_names(DOMAIN));
    std::fs::write(&key, key_pem).unwrap();
    std::fs::write(&cert, chain_pem).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if health(addr, &format!("c.{DOMAIN}"), roots_from(&second_ca))
            .await
            .is_ok()
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new certificate is served"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        health(addr, &format!("c.{DOMAIN}"), roots_from(&first_ca))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_tls_listener_that_cannot_bind_names_its_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let mut config = peace::Config::default();
    config.http.addr = "127.0.0.1:0".into();
    config.database.url = format!("sqlite://{}/peace.db", dir.path().display());
    config.storage.folder = dir.path().join("files").display().to_string();
    config.tls.mode = TlsMode::LocalCa;
    config.tls.addr = addr.clone();
    config.tls.dir = dir.path().join("tls").display().to_string();
    let err = peace::Server::start(&config).await.unwrap_err();
    assert!(format!("{err:#}").contains(&addr), "{err:#}");
}

fn roots_from_pem(pem: &[u8]) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    roots
}

async fn wait_until_listening(port: u16, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `acme` against pebble, the ACME test server (Debian's `pebble` package), when
/// `PEACE_TEST_PEBBLE` names its binary (`.ci/run` sets it). Pebble resolves the names
/// through `pebble-challtestsrv`'s DNS, which answers 127.0.0.1 for every name, and
/// validates HTTP-01 on the port of the server's plain listener: the whole order runs for
/// real, challenge answers included.
#[tokio::test]
async fn acme_orders_a_certificate_from_pebble_over_http_01() {
    let Ok(pebble) = std::env::var("PEACE_TEST_PEBBLE") else {
        eprintln!("PEACE_TEST_PEBBLE is not set: the ACME test against pebble is skipped");
        return;
    };
    let challtestsrv = Path::new(&pebble).with_file_name("pebble-challtestsrv");
    let dir = tempfile::tempdir().unwrap();

    // Pebble's own HTTPS certificate, which the server is told to trust for the directory.
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let (pebble_cert, pebble_key) = (dir.path().join("pebble.crt"), dir.path().join("pebble.key"));
    std::fs::write(&pebble_cert, cert.pem()).unwrap();
    std::fs::write(&pebble_key, key.serialize_pem()).unwrap();

    let (acme_port, management_port, dns_port, dns_management_port, http_port) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let config = serde_json::json!({
        "pebble": {
            "listenAddress": format!("127.0.0.1:{acme_port}"),
            "managementListenAddress": format!("127.0.0.1:{management_port}"),
            "certificate": pebble_cert,
            "privateKey": pebble_key,
            "httpPort": http_port,
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        }
    });
    let config_path = dir.path().join("pebble.json");
    std::fs::write(&config_path, config.to_string()).unwrap();

    let _dns = tokio::process::Command::new(&challtestsrv)
        .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
        .args(["-dns01", &format!("127.0.0.1:{dns_port}")])
        .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
        .args(["-management", &format!("127.0.0.1:{dns_management_port}")])
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("pebble-challtestsrv beside pebble");
    wait_until_listening(dns_management_port, "pebble-challtestsrv").await;
    let _pebble = tokio::process::Command::new(&pebble)
        .arg("-config")
        .arg(&config_path)
        .args(["-dnsserver", &format!("127.0.0.1:{dns_port}")])
        // No random waits before validating, and no rejected nonces: a quick, steady run.
        .env("PEBBLE_VA_NOSLEEP", "1")
        .env("PEBBLE_WFE_NONCEREJECT", "0")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("pebble");
    wait_until_listening(acme_port, "pebble").await;

    let tls_dir = dir.path().join("tls");
    let mut server = TestServer::start_with(|c| {
        c.http.addr = format!("127.0.0.1:{http_port}");
        c.tls.mode = TlsMode::Acme;
        c.tls.addr = "127.0.0.1:0".into();
        c.tls.dir = tls_dir.display().to_string();
        c.tls.email = "admin@peace.local".into();
        c.tls.directory = format!("https://127.0.0.1:{acme_port}/dir");
        c.tls.directory_ca = pebble_cert.display().to_string();
    })
    .await;
    let handle = server.server.as_ref().unwrap().tls.as_ref().unwrap();
    tokio::time::timeout(Duration::from_secs(90), handle.ready())
        .await
        .expect("pebble issued a certificate");

    // The certificate chains to pebble's root (made fresh at every pebble start).
    let root = https(
        SocketAddr::from(([127, 0, 0, 1], management_port)),
        "localhost",
        roots_from(&pebble_cert),
        "GET",
        "/roots/0",
        b"",
    )
    .await
    .unwrap();
    assert_eq!(root.status, 200);
    let addr = tls_addr(&server);
    server.player("Acme").await;
    assert!(login_over_https(addr, roots_from_pem(&root.body), "Acme").await > 0);
    for name in peace_tls::client_names(DOMAIN) {
        assert_eq!(
            health(addr, &name, roots_from_pem(&root.body))
                .await
                .unwrap(),
            200
        );
    }
    for file in ["acme-account.json", "acme.crt", "acme.key"] {
        assert!(tls_dir.join(file).exists(), "{file} is kept");
    }

    // A restart serves the stored certificate at once, without a new order.
    server.restart().await;
    let handle = server.server.as_ref().unwrap().tls.as_ref().unwrap();
    tokio::time::timeout(Duration::from_millis(100), handle.ready())
        .await
        .expect("the stored certificate is served");
    let addr = tls_addr(&server);
    assert_eq!(
        health(addr, &format!("c.{DOMAIN}"), roots_from_pem(&root.body))
            .await
            .unwrap(),
        200
    );
}
