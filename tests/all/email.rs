//! E-mail deliveries against a real SMTP server (aiosmtpd) on loopback: the
//! host's lettre transport with plain, STARTTLS and implicit TLS
//! connections, AUTH, refusals and transient failures, then the whole
//! pipeline through the real binary and the `email` notifier plugin.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use vigil::config::{CaFile, Secret, SecretSource, SmtpConfig, SmtpCredentials, SmtpTls};
use vigil::notify::smtp::{Lettre, MailTransport};
use vigil::notify::transport::DeliveryError;
use vigil::sandbox::Email;
use vigil_tests::{
    ReceivedMail, SmtpFailures, SmtpOptions, SmtpServer, Target, TempDir, Vigil, eventually,
    free_port, install_plugins,
};

const WAIT: Duration = Duration::from_secs(10);
const ATTEMPT: Duration = Duration::from_secs(5);

fn settings(server_port: u16) -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".into(),
        port: server_port,
        tls: SmtpTls::Plain,
        credentials: None,
        from: "Vigil Alerts <vigil@alerts.example.com>".into(),
        hello_name: None,
        ca_file: None,
        timeout: Duration::from_secs(5),
    }
}

fn email(html: Option<&str>) -> Email {
    Email {
        to: vec![
            "oncall@example.com".into(),
            "ML Team <ml-team@example.com>".into(),
        ],
        cc: vec!["lead@example.com".into()],
        subject: "[FIRING:1] ModelErrorRateHigh über 5 % — resnet".into(),
        text: "Error rate 7.5% on resnet (über the 5% threshold).\nSecond line.\n".into(),
        html: html.map(String::from),
    }
}

/// A self-signed certificate for 127.0.0.1 and localhost, written as PEM
/// files: the server's certificate and key, and the same certificate as the
/// CA file the client trusts.
struct Certificate {
    cert: PathBuf,
    key: PathBuf,
    pem: Vec<u8>,
}

impl Certificate {
    fn generate(dir: &TempDir) -> Certificate {
        let rcgen::CertifiedKey { cert, key_pair } =
            rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
                .expect("generate a certificate");
        let pem = cert.pem().into_bytes();
        let cert_path = dir.path().join("cert.pem");
        let key_path = dir.path().join("key.pem");
        std::fs::write(&cert_path, &pem).expect("write cert");
        std::fs::write(&key_path, key_pair.serialize_pem()).expect("write key");
        Certificate {
            cert: cert_path,
            key: key_path,
            pem,
        }
    }

    fn pair(&self) -> Option<(PathBuf, PathBuf)> {
        Some((self.cert.clone(), self.key.clone()))
    }

    fn ca_file(&self) -> Option<CaFile> {
        Some(CaFile {
            path: self.cert.clone(),
            pem: self.pem.clone(),
        })
    }
}

fn credentials(user: &str, password: &str) -> Option<SmtpCredentials> {
    Some(SmtpCredentials {
        username: user.into(),
        password: Secret::new(password, SecretSource::Env("SMTP_PASSWORD".into())),
    })
}

async fn send(lettre: &Lettre, s: &SmtpConfig, e: &Email) -> Result<(), DeliveryError> {
    lettre.send(s, e, ATTEMPT).await
}

fn part<'a>(mail: &'a ReceivedMail, content_type: &str) -> &'a str {
    mail.parts
        .iter()
        .find(|(t, _)| t == content_type)
        .map(|(_, body)| body.as_str())
        .unwrap_or_else(|| panic!("no {content_type} part in {:?}", mail.parts))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_and_html_arrive_as_multipart_alternative_with_every_header() {
    let server = SmtpServer::start();
    let lettre = Lettre::new();
    let html = "<h1>ModelErrorRateHigh</h1><p>über 5 % — <b>resnet</b></p>";
    send(&lettre, &settings(server.port), &email(Some(html)))
        .await
        .expect("delivered");
    let mail = server.wait_for(1, WAIT).await.remove(0);

    // The envelope: the configured sender, every To and Cc recipient.
    assert_eq!(mail.mail_from, "vigil@alerts.example.com");
    assert_eq!(
        mail.rcpt_tos,
        [
            "oncall@example.com",
            "ml-team@example.com",
            "lead@example.com"
        ]
    );
    assert!(!mail.tls);
    // The headers, decoded.
    assert_eq!(
        mail.header("From"),
        Some("Vigil Alerts <vigil@alerts.example.com>")
    );
    assert_eq!(
        mail.header("To"),
        Some("oncall@example.com, ML Team <ml-team@example.com>")
    );
    assert_eq!(mail.header("Cc"), Some("lead@example.com"));
    assert!(mail.header("Bcc").is_none());
    assert_eq!(
        mail.header("Subject"),
        Some("[FIRING:1] ModelErrorRateHigh über 5 % — resnet")
    );
    // Non-ASCII travels encoded (RFC 2047 words, quoted-printable or
    // base64 bodies): the message is 7-bit clean.
    assert!(mail.data.is_ascii(), "{}", mail.data);
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let date = mail.date_epoch.expect("a Date header that parses");
    assert!((now - date).abs() < 120.0, "Date {date} vs now {now}");
    let id = mail.header("Message-ID").expect("Message-ID");
    assert!(
        id.starts_with('<') && id.ends_with("@alerts.example.com>"),
        "{id}"
    );
    assert_eq!(mail.header("MIME-Version"), Some("1.0"));
    // Both bodies, text first, as multipart/alternative wants.
    assert_eq!(mail.content_type, "multipart/alternative");
    let types: Vec<&str> = mail.parts.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types, ["text/plain", "text/html"]);
    assert_eq!(
        part(&mail, "text/plain").trim_end(),
        "Error rate 7.5% on resnet (über the 5% threshold).\nSecond line."
    );
    assert_eq!(part(&mail, "text/html").trim_end(), html);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_only_is_one_plain_part_and_connections_are_reused() {
    let server = SmtpServer::start();
    let lettre = Lettre::new();
    let s = SmtpConfig {
        hello_name: Some("vigil.example.com".into()),
        ..settings(server.port)
    };
    send(&lettre, &s, &email(None)).await.expect("delivered");
    // lettre parks a used connection from a task it spawns: give it a
    // moment, or a loaded machine opens a second connection.
    tokio::time::sleep(Duration::from_millis(200)).await;
    send(&lettre, &s, &email(None)).await.expect("delivered");
    let mails = server.wait_for(2, WAIT).await;
    assert_eq!(mails[0].content_type, "text/plain");
    assert_eq!(mails[0].parts.len(), 1);
    assert_eq!(
        part(&mails[0], "text/plain").trim_end(),
        "Error rate 7.5% on resnet (über the 5% threshold).\nSecond line."
    );
    assert_eq!(mails[0].helo, "vigil.example.com");
    assert_ne!(mails[0].header("Message-ID"), mails[1].header("Message-ID"));
    assert_eq!(
        mails[0].peer_port, mails[1].peer_port,
        "the second message used the pooled connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_with_a_private_ca_and_auth() {
    let dir = TempDir::new("smtp-starttls");
    let cert = Certificate::generate(&dir);
    let server = SmtpServer::with(SmtpOptions {
        starttls: cert.pair(),
        auth: Some(("vigil".into(), "s3cret".into())),
        ..SmtpOptions::default()
    });
    let lettre = Lettre::new();
    let s = SmtpConfig {
        tls: SmtpTls::StartTls,
        ca_file: cert.ca_file(),
        credentials: credentials("vigil", "s3cret"),
        ..settings(server.port)
    };
    send(&lettre, &s, &email(None)).await.expect("delivered");
    let mail = server.wait_for(1, WAIT).await.remove(0);
    assert!(mail.tls, "the session was upgraded with STARTTLS");
    assert_eq!(mail.login.as_deref(), Some("vigil"));
    assert_eq!(mail.header("Cc"), Some("lead@example.com"));

    // A wrong password is refused for good (535), not retried.
    let wrong = SmtpConfig {
        credentials: credentials("vigil", "wrong"),
        ..s.clone()
    };
    let err = send(&lettre, &wrong, &email(None)).await.unwrap_err();
    assert!(err.is_permanent(), "{err}");
    assert!(err.to_string().contains("535"), "{err}");

    // Without the CA the certificate is not trusted and nothing is sent.
    // Retried like any connection failure: a certificate can be fixed on
    // the server while the delivery waits.
    let untrusted = SmtpConfig {
        ca_file: None,
        ..s.clone()
    };
    let err = send(&lettre, &untrusted, &email(None)).await.unwrap_err();
    assert!(matches!(err, DeliveryError::Transient(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("invalid peer certificate: UnknownIssuer"),
        "{err}"
    );
    assert_eq!(server.received().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_tls() {
    let dir = TempDir::new("smtp-tls");
    let cert = Certificate::generate(&dir);
    let server = SmtpServer::with(SmtpOptions {
        tls: cert.pair(),
        ..SmtpOptions::default()
    });
    let s = SmtpConfig {
        tls: SmtpTls::Tls,
        ca_file: cert.ca_file(),
        ..settings(server.port)
    };
    send(&Lettre::new(), &s, &email(Some("<p>x</p>")))
        .await
        .expect("delivered");
    let mail = server.wait_for(1, WAIT).await.remove(0);
    assert!(mail.tls);
    assert_eq!(mail.content_type, "multipart/alternative");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_starttls_is_a_permanent_error_when_tls_is_required() {
    let server = SmtpServer::start();
    let s = SmtpConfig {
        tls: SmtpTls::StartTls,
        ..settings(server.port)
    };
    let err = send(&Lettre::new(), &s, &email(None)).await.unwrap_err();
    assert!(err.is_permanent(), "{err}");
    assert!(err.to_string().contains("STARTTLS"), "{err}");
    assert!(server.received().is_empty(), "nothing went out in clear");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_recipient_is_permanent() {
    let server = SmtpServer::with(SmtpOptions {
        rcpt_reply: Some("550 5.1.1 No such user here".into()),
        ..SmtpOptions::default()
    });
    let err = send(&Lettre::new(), &settings(server.port), &email(None))
        .await
        .unwrap_err();
    assert!(matches!(err, DeliveryError::Permanent(_)), "{err:?}");
    assert!(err.to_string().contains("550"), "{err}");
    assert!(server.received().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_replies_are_transient_and_the_next_attempt_succeeds() {
    for (stage, reply) in [
        ("data", "451 4.3.0 Mailbox busy, try again"),
        ("mail", "421 4.3.2 Service not available, closing channel"),
    ] {
        let server = SmtpServer::with(SmtpOptions {
            fail_first: Some(SmtpFailures {
                count: 2,
                stage,
                reply: reply.into(),
            }),
            ..SmtpOptions::default()
        });
        let lettre = Lettre::new();
        let s = settings(server.port);
        for attempt in 0..2 {
            let err = send(&lettre, &s, &email(None)).await.unwrap_err();
            assert!(
                matches!(err, DeliveryError::Transient(_)),
                "{stage} attempt {attempt}: {err:?}"
            );
            assert!(err.to_string().contains(&reply[..3]), "{err}");
        }
        send(&lettre, &s, &email(None))
            .await
            .unwrap_or_else(|e| panic!("{stage}: third attempt: {e}"));
        assert_eq!(server.wait_for(1, WAIT).await.len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_server_and_a_silent_server_are_transient() {
    let refused = send(&Lettre::new(), &settings(free_port()), &email(None))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, DeliveryError::Transient(_)),
        "{refused:?}"
    );

    // Accepts connections but never greets: the [smtp] timeout ends it.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let s = SmtpConfig {
        timeout: Duration::from_millis(300),
        ..settings(silent.local_addr().expect("addr").port())
    };
    let started = std::time::Instant::now();
    let err = send(&Lettre::new(), &s, &email(None)).await.unwrap_err();
    assert!(matches!(err, DeliveryError::Transient(_)), "{err:?}");
    assert!(started.elapsed() < ATTEMPT, "{:?}", started.elapsed());
    drop(silent);
}

/// The whole pipeline: a rule fires, the `email` notifier renders it, the
/// host sends it over SMTP (through one 451 it must retry), and the message
/// arrives with what the plugin rendered and what the config set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_firing_rule_arrives_by_email_through_the_real_binary() {
    let dir = TempDir::new("e2e-email");
    install_plugins(
        &dir.path().join("plugins"),
        &["check-threshold", "notify-email"],
    );
    let server = SmtpServer::with(SmtpOptions {
        fail_first: Some(SmtpFailures {
            count: 1,
            stage: "data",
            reply: "451 4.3.0 Try again later".into(),
        }),
        ..SmtpOptions::default()
    });
    let target = Target::start(0.01).await;
    let port = free_port();
    let text = format!(
        r#"
data_dir = "data"
plugin_dir = "plugins"
listen = "127.0.0.1:{port}"

[smtp]
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
from = "Vigil <vigil@alerts.example.com>"
hello_name = "vigil.example.com"

[[targets]]
job = "model-server"
url = "http://{target}/metrics"
interval = "200ms"
timeout = "150ms"

[[rules]]
name = "ErrorRatioHigh"
query = 'model_error_ratio{{model="resnet"}}'
every = "200ms"
window = "10s"
check = "threshold"
params = {{ above = 0.05 }}
labels = {{ severity = "critical" }}
annotations = {{ summary = "Error ratio {{{{ $value | humanizePercentage }}}} on {{{{ $labels.model }}}}" }}

[[receivers]]
name = "ml-oncall"
notifier = "email"
params = {{ to = ["ML On-call <ml-oncall@example.com>"], cc = ["platform@example.com"] }}
smtp = {{ from = "ML Alerts <ml-alerts@example.com>" }}
timeout = "5s"

[route]
receiver = "ml-oncall"
group_by = ["alertname"]
group_wait = "0s"
group_interval = "1s"
"#,
        smtp_port = server.port,
        target = target.addr,
    );
    let cfg = dir.path().join("vigil.toml");
    std::fs::write(&cfg, text).expect("write config");
    let addr = format!("127.0.0.1:{port}").parse().expect("addr");
    let v = Vigil::start(&cfg, addr, &dir.path().join("vigil.log")).await;
    eventually(WAIT, "the rule to evaluate", || async {
        (v.rule("ErrorRatioHigh").await["evaluations"].as_u64()? > 2).then_some(())
    })
    .await;
    assert!(server.received().is_empty(), "nothing below the threshold");

    target.set(0.2);
    let mails = eventually(Duration::from_secs(20), "the e-mail", || async {
        let got = server.received();
        (!got.is_empty()).then_some(got)
    })
    .await;
    let mail = &mails[0];
    // The receiver's own `from` overrides [smtp]'s; the rest is [smtp]'s.
    assert_eq!(mail.mail_from, "ml-alerts@example.com");
    assert_eq!(
        mail.header("From"),
        Some("ML Alerts <ml-alerts@example.com>")
    );
    assert_eq!(mail.helo, "vigil.example.com");
    assert_eq!(
        mail.rcpt_tos,
        ["ml-oncall@example.com", "platform@example.com"]
    );
    assert_eq!(
        mail.header("To"),
        Some("ML On-call <ml-oncall@example.com>")
    );
    assert_eq!(mail.header("Cc"), Some("platform@example.com"));
    let subject = mail.header("Subject").expect("Subject");
    assert!(
        subject.contains("FIRING") && subject.contains("ErrorRatioHigh"),
        "{subject}"
    );
    assert!(mail.date_epoch.is_some() && mail.header("Message-ID").is_some());
    assert_eq!(mail.content_type, "multipart/alternative");
    let text = part(mail, "text/plain");
    assert!(text.contains("Error ratio 20% on resnet"), "{text}");
    let html = part(mail, "text/html");
    assert!(html.contains("Error ratio 20% on resnet"), "{html}");
    // The server refused the first attempt with a 451: the host retried.
    let log = v.log_text();
    assert!(
        log.contains("451"),
        "the transient failure was logged:\n{log}"
    );
    // One notification, one e-mail: the retry did not duplicate it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(server.received().len(), 1, "{log}");
    v.stop().await;
}
