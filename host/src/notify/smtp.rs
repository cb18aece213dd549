//! E-mail deliveries over SMTP.
//!
//! A notifier plugin renders an [`Email`] (recipients, subject, text and
//! optional HTML); the host turns it into a MIME message, with `From` taken
//! from the receiver's SMTP settings so a plugin cannot pick a sender, and
//! sends it with lettre over tokio and rustls (the TLS stack reqwest already
//! uses, no OpenSSL). Connections are pooled per distinct settings.
//!
//! [`MailTransport`] is the seam: delivery policy is tested with a fake, the
//! lettre implementation against a real SMTP server on loopback.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use lettre::message::{Mailbox, Message, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::{AsyncSmtpTransport, PoolConfig};
use lettre::{AsyncTransport, Tokio1Executor};

use super::transport::{BoxFuture, DeliveryError};
use crate::config::{ReceiverConfig, SmtpConfig, SmtpTls};
use crate::sandbox::Email;

/// Sends e-mails.
pub trait MailTransport: Send + Sync {
    /// Sends one message through the server `settings` name, within
    /// `timeout` (the receiver's) and the settings' own timeout.
    fn send<'a>(
        &'a self,
        settings: &'a SmtpConfig,
        email: &'a Email,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), DeliveryError>>;
}

/// Delivers one rendered e-mail for a receiver, or explains why it cannot:
/// any notifier may return e-mails, so missing settings surface here.
pub(crate) async fn send(
    cfg: &ReceiverConfig,
    email: &Email,
    mail: &dyn MailTransport,
) -> Result<(), DeliveryError> {
    let Some(settings) = &cfg.smtp else {
        return Err(DeliveryError::Permanent(format!(
            "notifier {:?} of receiver `{}` returned an e-mail, but the receiver has no SMTP settings: add an [smtp] section (or a `smtp` table in the receiver) with `host` and `from`",
            cfg.notifier, cfg.name
        )));
    };
    mail.send(settings, email, cfg.timeout).await
}

/// The process-wide lettre transport. Pools are keyed by settings, so one
/// instance lets a reload keep the connections of servers it did not change.
pub fn shared() -> &'static Lettre {
    static SHARED: OnceLock<Lettre> = OnceLock::new();
    SHARED.get_or_init(Lettre::new)
}

/// Transports (each with its pool) kept at most; past this the oldest goes.
/// Only reloads that change SMTP settings add entries.
const MAX_TRANSPORTS: usize = 32;

/// Connections kept open per server.
const POOL_SIZE: u32 = 4;

/// An idle pooled connection is closed after this; servers drop idle
/// clients after a few minutes anyway (RFC 5321 suggests 5).
const POOL_IDLE: Duration = Duration::from_secs(60);

type SmtpTransport = AsyncSmtpTransport<Tokio1Executor>;

/// The real transport: lettre, one connection pool per distinct settings.
pub struct Lettre {
    /// Keyed by [`pool_key`].
    transports: Mutex<Vec<(SmtpConfig, SmtpTransport)>>,
}

impl Default for Lettre {
    fn default() -> Self {
        Self::new()
    }
}

impl Lettre {
    pub fn new() -> Lettre {
        Lettre {
            transports: Mutex::new(Vec::new()),
        }
    }

    /// The transport for these settings, built on first use. Must run inside
    /// a tokio runtime (the pool spawns its cleanup task).
    fn transport(&self, settings: &SmtpConfig) -> Result<SmtpTransport, DeliveryError> {
        let key = pool_key(settings);
        let mut transports = self.transports.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, transport)) = transports.iter().find(|(k, _)| *k == key) {
            return Ok(transport.clone());
        }
        let transport = build_transport(settings)?;
        if transports.len() >= MAX_TRANSPORTS {
            transports.remove(0);
        }
        transports.push((key, transport.clone()));
        Ok(transport)
    }

    /// Drops the transport for these settings and its pooled connections.
    fn forget(&self, settings: &SmtpConfig) {
        let key = pool_key(settings);
        self.transports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(k, _)| *k != key);
    }
}

/// The settings with `from` cleared: senders share a server's connections.
fn pool_key(settings: &SmtpConfig) -> SmtpConfig {
    SmtpConfig {
        from: String::new(),
        ..settings.clone()
    }
}

impl MailTransport for Lettre {
    fn send<'a>(
        &'a self,
        settings: &'a SmtpConfig,
        email: &'a Email,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let message = message(settings, email)?;
            let transport = self.transport(settings)?;
            // lettre bounds only the TCP connect of its async transport; a
            // server that stops answering is cut off here.
            let limit = timeout.min(settings.timeout);
            match tokio::time::timeout(limit, transport.send(message)).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(classify(settings, &e)),
                Err(_) => {
                    // A connection cut off mid-conversation would go back to
                    // the pool as if healthy: start a new pool instead.
                    self.forget(settings);
                    Err(DeliveryError::Transient(format!(
                        "SMTP {}:{}: not delivered within {limit:?}",
                        settings.host, settings.port
                    )))
                }
            }
        })
    }
}

fn build_transport(s: &SmtpConfig) -> Result<SmtpTransport, DeliveryError> {
    let tls = match s.tls {
        SmtpTls::Plain => Tls::None,
        SmtpTls::StartTls => Tls::Required(tls_parameters(s)?),
        SmtpTls::Tls => Tls::Wrapper(tls_parameters(s)?),
    };
    let mut builder = SmtpTransport::builder_dangerous(s.host.as_str())
        .port(s.port)
        .tls(tls)
        .timeout(Some(s.timeout))
        .pool_config(
            PoolConfig::new()
                .min_idle(0)
                .max_size(POOL_SIZE)
                .idle_timeout(POOL_IDLE),
        );
    if let Some(c) = &s.credentials {
        builder = builder
            .credentials(Credentials::new(
                c.username.clone(),
                c.password.expose().to_string(),
            ))
            .authentication(vec![Mechanism::Plain, Mechanism::Login]);
    }
    if let Some(name) = &s.hello_name {
        builder = builder.hello_name(ClientId::Domain(name.clone()));
    }
    Ok(builder.build())
}

/// Verifies the server against the webpki roots plus `ca_file`'s.
fn tls_parameters(s: &SmtpConfig) -> Result<TlsParameters, DeliveryError> {
    let mut builder = TlsParameters::builder(s.host.clone());
    if let Some(ca) = &s.ca_file {
        let certificate = Certificate::from_pem(&ca.pem).map_err(|e| {
            DeliveryError::Permanent(format!("`ca_file` {}: {e}", ca.path.display()))
        })?;
        builder = builder.add_root_certificate(certificate);
    }
    builder
        .build_rustls()
        .map_err(|e| DeliveryError::Permanent(format!("SMTP TLS setup for {}: {e}", s.host)))
}

/// 5xx replies, and what the client refuses to do (no STARTTLS offered, no
/// usable AUTH mechanism, a bad TLS setup), cannot succeed on a retry; 4xx
/// replies, timeouts and connection trouble can.
fn classify(s: &SmtpConfig, e: &lettre::transport::smtp::Error) -> DeliveryError {
    let message = format!(
        "SMTP {}:{}: {}",
        s.host,
        s.port,
        without_repeats(&e.to_string())
    );
    if e.is_permanent() || e.is_client() || e.is_tls() {
        DeliveryError::Permanent(message)
    } else {
        DeliveryError::Transient(message)
    }
}

/// lettre nests its errors in ones of the same kind ("Connection error:
/// Connection error: invalid peer certificate"): say each part once.
fn without_repeats(message: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in message.split(": ") {
        if parts.last() != Some(&part) {
            parts.push(part);
        }
    }
    parts.join(": ")
}

/// The MIME message for a rendered e-mail: `From` from the settings, a
/// `Date`, a `Message-ID` in the sender's domain, and the text alone or text
/// and HTML as multipart/alternative. Invalid addresses are permanent
/// errors: retrying would not fix the plugin's output.
pub fn message(settings: &SmtpConfig, email: &Email) -> Result<Message, DeliveryError> {
    let from: Mailbox = settings.from.parse().map_err(|e| {
        DeliveryError::Permanent(format!("invalid `from` {:?}: {e}", settings.from))
    })?;
    if email.to.is_empty() && email.cc.is_empty() {
        return Err(DeliveryError::Permanent(
            "the notifier returned an e-mail without recipients".into(),
        ));
    }
    let mut builder = Message::builder()
        .message_id(Some(message_id(&from)))
        .from(from)
        .subject(one_line(&email.subject))
        .date_now()
        .user_agent(concat!("vigil/", env!("CARGO_PKG_VERSION")).to_string());
    for to in &email.to {
        builder = builder.to(mailbox("to", to)?);
    }
    for cc in &email.cc {
        builder = builder.cc(mailbox("cc", cc)?);
    }
    let built = match &email.html {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(
            email.text.clone(),
            html.clone(),
        )),
        None => builder.singlepart(SinglePart::plain(email.text.clone())),
    };
    built.map_err(|e| DeliveryError::Permanent(format!("cannot build the e-mail: {e}")))
}

fn mailbox(field: &str, address: &str) -> Result<Mailbox, DeliveryError> {
    address.parse().map_err(|e| {
        DeliveryError::Permanent(format!(
            "the notifier returned an invalid `{field}` address {address:?}: {e}"
        ))
    })
}

/// A header value on one line: a line break in a subject would end the
/// header early.
fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

/// `<time.counter.random@domain>`: unique across processes and hosts
/// without a hostname lookup, in the sender's domain as RFC 5322 suggests.
fn message_id(from: &Mailbox) -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut random = std::collections::hash_map::RandomState::new().build_hasher();
    random.write_u128(nanos);
    format!(
        "<{nanos:x}.{:x}.{:016x}.vigil@{}>",
        COUNTER.fetch_add(1, Ordering::Relaxed),
        random.finish(),
        from.email.domain()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Location, Secret, SecretSource, SmtpCredentials};
    use crate::sandbox::Delivery;
    use std::sync::atomic::AtomicU32;
    use tokio::time::Instant;

    fn settings() -> SmtpConfig {
        SmtpConfig {
            host: "127.0.0.1".into(),
            port: 2525,
            tls: SmtpTls::Plain,
            credentials: None,
            from: "Vigil <vigil@alerts.example.com>".into(),
            hello_name: None,
            ca_file: None,
            timeout: Duration::from_secs(1),
        }
    }

    fn email(html: Option<&str>) -> Email {
        Email {
            to: vec!["oncall@example.com".into(), "Ops <ops@example.com>".into()],
            cc: vec!["lead@example.com".into()],
            subject: "[FIRING:1] ModelErrorRateHigh\r\nBcc: evil@example.com".into(),
            text: "Error rate 7% on resnet".into(),
            html: html.map(String::from),
        }
    }

    fn formatted(m: &Message) -> String {
        String::from_utf8(m.formatted()).unwrap()
    }

    #[test]
    fn text_only_is_a_single_plain_part_with_the_configured_sender() {
        let m = message(&settings(), &email(None)).unwrap();
        let raw = formatted(&m);
        assert!(
            raw.contains("From: Vigil <vigil@alerts.example.com>\r\n"),
            "{raw}"
        );
        assert!(
            raw.contains("To: oncall@example.com, Ops <ops@example.com>\r\n"),
            "{raw}"
        );
        assert!(raw.contains("Cc: lead@example.com\r\n"), "{raw}");
        assert!(
            raw.contains("Content-Type: text/plain; charset=utf-8"),
            "{raw}"
        );
        assert!(!raw.contains("multipart"), "{raw}");
        assert!(raw.contains("\r\nDate: "), "{raw}");
        assert!(raw.contains("Message-ID: <"), "{raw}");
        assert!(raw.contains("@alerts.example.com>\r\n"), "{raw}");
        assert!(
            raw.ends_with("\r\n\r\nError rate 7% on resnet\r\n"),
            "{raw}"
        );
        // The envelope holds every recipient and the configured sender.
        let envelope = m.envelope();
        let rcpt: Vec<String> = envelope.to().iter().map(ToString::to_string).collect();
        assert_eq!(
            rcpt,
            ["oncall@example.com", "ops@example.com", "lead@example.com"]
        );
        assert_eq!(
            envelope.from().map(ToString::to_string).as_deref(),
            Some("vigil@alerts.example.com")
        );
    }

    #[test]
    fn a_line_break_in_the_subject_cannot_add_a_header() {
        let raw = formatted(&message(&settings(), &email(None)).unwrap());
        assert!(!raw.contains("\r\nBcc:"), "{raw}");
        assert!(
            raw.contains("Subject: [FIRING:1] ModelErrorRateHigh  Bcc: evil@example.com\r\n"),
            "{raw}"
        );
    }

    #[test]
    fn html_makes_multipart_alternative_with_text_first() {
        let raw = formatted(&message(&settings(), &email(Some("<p>Error rate</p>"))).unwrap());
        assert!(
            raw.contains("Content-Type: multipart/alternative;"),
            "{raw}"
        );
        let text = raw.find("Content-Type: text/plain").expect("text part");
        let html = raw.find("Content-Type: text/html").expect("html part");
        assert!(
            text < html,
            "text first: clients show the last part they can"
        );
        assert!(raw.contains("<p>Error rate</p>"), "{raw}");
    }

    #[test]
    fn nested_errors_read_once() {
        assert_eq!(
            without_repeats(
                "Connection error: Connection error: invalid peer certificate: UnknownIssuer"
            ),
            "Connection error: invalid peer certificate: UnknownIssuer"
        );
        assert_eq!(
            without_repeats("permanent error (550): no"),
            "permanent error (550): no"
        );
    }

    #[test]
    fn message_ids_are_unique() {
        let from: Mailbox = "a@b.example".parse().unwrap();
        let a = message_id(&from);
        let b = message_id(&from);
        assert_ne!(a, b);
        assert!(a.starts_with('<') && a.ends_with("@b.example>"), "{a}");
    }

    #[test]
    fn bad_addresses_and_no_recipients_are_permanent() {
        let mut e = email(None);
        e.to.push("not an address".into());
        let err = message(&settings(), &e).unwrap_err();
        assert!(err.is_permanent(), "{err}");
        assert!(err.to_string().contains("\"not an address\""), "{err}");
        let mut e = email(None);
        e.cc = vec!["x@".into()];
        assert!(message(&settings(), &e).unwrap_err().is_permanent());
        let mut e = email(None);
        e.to.clear();
        e.cc.clear();
        let err = message(&settings(), &e).unwrap_err();
        assert!(err.is_permanent() && err.to_string().contains("without recipients"));
    }

    #[test]
    fn one_pool_per_server_whatever_the_sender() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let lettre = Lettre::new();
            let a = settings();
            let b = SmtpConfig {
                from: "other@example.com".into(),
                ..settings()
            };
            let c = SmtpConfig {
                credentials: Some(SmtpCredentials {
                    username: "u".into(),
                    password: Secret::new("p", SecretSource::Env("P".into())),
                }),
                ..settings()
            };
            for s in [&a, &b, &c, &a] {
                lettre.transport(s).unwrap();
            }
            assert_eq!(lettre.transports.lock().unwrap().len(), 2);
            // After a timeout the pool goes, whichever sender timed out.
            lettre.forget(&b);
            assert_eq!(lettre.transports.lock().unwrap().len(), 1);
        });
    }

    /// Fails the first `failures` attempts, then accepts; counts attempts.
    struct FakeMail {
        failures: u32,
        attempts: AtomicU32,
    }

    impl MailTransport for FakeMail {
        fn send<'a>(
            &'a self,
            settings: &'a SmtpConfig,
            email: &'a Email,
            _timeout: Duration,
        ) -> BoxFuture<'a, Result<(), DeliveryError>> {
            Box::pin(async move {
                assert_eq!(settings.host, "127.0.0.1");
                assert_eq!(email.to[0], "oncall@example.com");
                let n = self.attempts.fetch_add(1, Ordering::SeqCst);
                if n < self.failures {
                    Err(DeliveryError::Transient("451 4.3.0 try again".into()))
                } else {
                    Ok(())
                }
            })
        }
    }

    fn receiver(smtp: Option<SmtpConfig>) -> ReceiverConfig {
        ReceiverConfig {
            name: "mail".into(),
            notifier: "email".into(),
            notifier_at: Location::new(1, 1),
            params: serde_json::json!({}),
            params_at: Location::new(1, 1),
            params_written: Default::default(),
            allow_hosts: vec![],
            send_resolved: true,
            timeout: Duration::from_secs(1),
            retry_for: Duration::from_secs(60),
            max_body_bytes: 1 << 20,
            smtp,
        }
    }

    struct NoHttp;

    impl super::super::transport::HttpTransport for NoHttp {
        fn send<'a>(
            &'a self,
            _req: &'a crate::sandbox::HttpRequest,
            _timeout: Duration,
        ) -> BoxFuture<'a, Result<String, DeliveryError>> {
            Box::pin(async { panic!("an e-mail went out over HTTP") })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn e_mails_are_retried_through_the_mail_transport() {
        let mail = FakeMail {
            failures: 2,
            attempts: AtomicU32::new(0),
        };
        let delivered = super::super::deliver_with(
            &receiver(Some(settings())),
            &Delivery::Email(email(None)),
            Instant::now(),
            &NoHttp,
            &mail,
        )
        .await
        .delivered;
        assert!(delivered);
        assert_eq!(mail.attempts.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_receiver_without_smtp_settings_fails_once_without_sending() {
        let mail = FakeMail {
            failures: 0,
            attempts: AtomicU32::new(0),
        };
        let cfg = receiver(None);
        let err = send(&cfg, &email(None), &mail).await.unwrap_err();
        assert!(err.is_permanent());
        assert!(err.to_string().contains("no SMTP settings"), "{err}");
        let delivered = super::super::deliver_with(
            &cfg,
            &Delivery::Email(email(None)),
            Instant::now(),
            &NoHttp,
            &mail,
        )
        .await
        .delivered;
        assert!(!delivered);
        assert_eq!(mail.attempts.load(Ordering::SeqCst), 0);
    }
}
