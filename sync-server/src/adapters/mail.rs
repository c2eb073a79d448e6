//! Mail to ticket buyers and recipients: the ticket confirmation, with the
//! ticket's QR code attached as a PNG, and the claim link of a ticket sent
//! by email transfer.
//!
//! Composing a message ([`ticket_confirmation`], [`transfer_claim`]) is
//! separate from sending it ([`Mailer`]), so the words can be checked without
//! a server and a second transport can be added without touching them.
//! [`SmtpMailer`] sends through the SMTP relay of `[smtp]`.
//!
//! A claim secret is a bearer credential for a ticket: it appears in the
//! mail only inside the claim link, is never logged, and prints as `..` in
//! `Debug`.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::adapters::BoxFuture;
use crate::config::{SmtpSettings, SmtpTls};

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("mail is disabled (no smtp.host configured)")]
    Disabled,
    #[error("{field} is not a usable mail address: {reason}")]
    Address { field: &'static str, reason: String },
    #[error("a claim secret is 16 to 128 characters of A-Z, a-z, 0-9, '-' and '_'")]
    InvalidSecret,
    #[error("cannot compose the message: {0}")]
    Compose(#[from] lettre::error::Error),
    #[error("SMTP relay: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    #[error("SMTP relay unreachable: {0}")]
    Unreachable(String),
}

impl MailError {
    /// The relay refused for good (unknown recipient, policy): retrying the
    /// same message will not help, unlike a timeout or a full mailbox.
    pub fn is_permanent(&self) -> bool {
        match self {
            MailError::Smtp(e) => e.is_permanent(),
            MailError::Disabled | MailError::Unreachable(_) => false,
            _ => true,
        }
    }
}

/// A bought (or received) ticket, confirmed to its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketConfirmation {
    pub to: String,
    pub event_name: String,
    pub ticket_id: u32,
    pub tier_name: String,
    /// What the holder shows at the gate.
    pub gate_code: GateCode,
}

/// What a confirmed ticket's holder shows at the gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateCode {
    /// The ticket's QR code as PNG (rendered by the caller), attached.
    Static { qr_png: Vec<u8> },
    /// The event's gates take only the live code of My tickets (holder
    /// proof): no code is attached, since one would be refused; the mail
    /// links to `tickets_url` instead.
    Live { tickets_url: String },
}

/// `code` as a QR code PNG, the way gates' cameras read it best (error
/// correction M, 6 pixels a module, a quiet zone): for the confirmation mail
/// and the API's QR download alike.
pub fn qr_png(code: &str) -> Result<Vec<u8>, String> {
    let qr = qrcode::QrCode::with_error_correction_level(code.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| format!("QR: {e}"))?;
    let image: image::GrayImage = qr
        .render::<image::Luma<u8>>()
        .module_dimensions(6, 6)
        .build();
    let mut png = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| format!("PNG: {e}"))?;
    Ok(png)
}

/// A payment that got no ticket and was refunded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundNotice {
    pub to: String,
    pub event_name: String,
    /// In the currency's smallest unit, as charged.
    pub amount_minor: u64,
    /// ISO 4217, lowercase as Stripe writes it.
    pub currency: String,
}

/// `25.00 USD`; `2500 JPY` for currencies without a minor unit.
pub fn format_amount(amount_minor: u64, currency: &str) -> String {
    // Stripe's zero-decimal currencies.
    const ZERO_DECIMAL: [&str; 16] = [
        "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
        "xaf", "xof", "xpf",
    ];
    let code = currency.to_uppercase();
    if ZERO_DECIMAL.contains(&currency.to_lowercase().as_str()) {
        format!("{amount_minor} {code}")
    } else {
        format!("{}.{:02} {code}", amount_minor / 100, amount_minor % 100)
    }
}

/// The one-time secret that claims an emailed ticket.
#[derive(Clone, PartialEq, Eq)]
pub struct ClaimSecret(String);

impl ClaimSecret {
    /// Only URL-safe characters, so the link needs no escaping and cannot be
    /// bent into another URL.
    pub fn new(secret: impl Into<String>) -> Result<Self, MailError> {
        let secret = secret.into();
        let url_safe = secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !(16..=128).contains(&secret.len()) || !url_safe {
            return Err(MailError::InvalidSecret);
        }
        Ok(Self(secret))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClaimSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClaimSecret(..)")
    }
}

/// A ticket sent to an email address, waiting to be claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferClaim {
    pub to: String,
    pub event_name: String,
    pub tier_name: String,
    /// Who sent it, as the recipient would recognise them (a name, an
    /// address or a shortened wallet).
    pub sender: String,
    pub secret: ClaimSecret,
    /// Unix seconds after which the link no longer works.
    pub expires_at: i64,
}

/// The link that claims a ticket: `claim_url` with `code=<secret>` added.
pub fn claim_link(claim_url: &str, secret: &ClaimSecret) -> String {
    let separator = if claim_url.contains('?') { '&' } else { '?' };
    format!("{claim_url}{separator}code={}", secret.expose())
}

fn mailbox(field: &'static str, address: &str) -> Result<Mailbox, MailError> {
    address
        .parse()
        .map_err(|e: lettre::address::AddressError| MailError::Address {
            field,
            reason: e.to_string(),
        })
}

/// A Message-ID in the sender's domain; without one some relays add their
/// own and others mark the mail as spam.
fn message_id(from: &Mailbox) -> String {
    format!(
        "<{}@{}>",
        uuid::Uuid::now_v7().simple(),
        from.email.domain()
    )
}

/// `2026-11-25 14:50 UTC`
fn utc_minute(unix: i64) -> String {
    let time = UNIX_EPOCH + Duration::from_secs(u64::try_from(unix).unwrap_or(0));
    let text = humantime::format_rfc3339_seconds(time).to_string();
    // 2026-11-25T14:50:25Z
    match (text.get(..10), text.get(11..16)) {
        (Some(date), Some(minute)) => format!("{date} {minute} UTC"),
        _ => text,
    }
}

/// The confirmation mail: a short text and, for a static code, the QR code
/// as `ticket-<id>.png`; for a live code, the way to My tickets instead.
pub fn ticket_confirmation(
    from: &Mailbox,
    mail: &TicketConfirmation,
) -> Result<Message, MailError> {
    let how = match &mail.gate_code {
        GateCode::Static { .. } => {
            "Show the attached QR code at the gate, on your phone or printed.\n\
             Whoever shows the code first gets in, so do not share it.\n"
                .to_owned()
        }
        GateCode::Live { tickets_url } => format!(
            "The gates of this event take only the live code that My tickets\n\
             shows on your phone. It changes every few seconds, so there is no\n\
             code to print, save or forward, and a screenshot will not get in.\n\
             \n\
             At the gate, open My tickets on your phone:\n\
             {tickets_url}\n\
             \n\
             Open it once before you leave, while you have signal: it then keeps\n\
             showing the live code without a connection.\n"
        ),
    };
    let text = format!(
        "Hello,\n\
         \n\
         your ticket for {event} is confirmed.\n\
         \n\
         Ticket: #{id}\n\
         Tier:   {tier}\n\
         \n\
         {how}",
        event = mail.event_name,
        id = mail.ticket_id,
        tier = mail.tier_name,
    );
    let message = Message::builder()
        .from(from.clone())
        .to(mailbox("to", &mail.to)?)
        .subject(format!("Your ticket for {}", mail.event_name))
        .message_id(Some(message_id(from)));
    let GateCode::Static { qr_png } = &mail.gate_code else {
        return Ok(message.singlepart(SinglePart::plain(text))?);
    };
    let qr = Attachment::new(format!("ticket-{}.png", mail.ticket_id)).body(
        qr_png.clone(),
        ContentType::parse("image/png").map_err(|e| MailError::Address {
            field: "content type",
            reason: e.to_string(),
        })?,
    );
    Ok(message.multipart(
        MultiPart::mixed()
            .singlepart(SinglePart::plain(text))
            .singlepart(qr),
    )?)
}

/// The refund mail: the payment arrived after the last seat was sold.
pub fn refund_notice(from: &Mailbox, mail: &RefundNotice) -> Result<Message, MailError> {
    let text = format!(
        "Hello,\n\
         \n\
         your payment of {amount} for a ticket to {event} arrived after the\n\
         last seat had been sold, so no ticket could be issued for it.\n\
         \n\
         We have refunded the full {amount} to your card. Depending on your\n\
         bank it shows on your statement within 5 to 10 business days.\n",
        amount = format_amount(mail.amount_minor, &mail.currency),
        event = mail.event_name,
    );
    Ok(Message::builder()
        .from(from.clone())
        .to(mailbox("to", &mail.to)?)
        .subject(format!("Refund for {}", mail.event_name))
        .message_id(Some(message_id(from)))
        .singlepart(SinglePart::plain(text))?)
}

/// The claim mail of an email transfer. The secret is only in the link.
pub fn transfer_claim(
    from: &Mailbox,
    claim_url: &str,
    mail: &TransferClaim,
) -> Result<Message, MailError> {
    let text = format!(
        "Hello,\n\
         \n\
         {sender} sent you a ticket for {event} ({tier}).\n\
         \n\
         Claim it before {expires}:\n\
         \n\
         {link}\n\
         \n\
         The link works once: whoever opens it first gets the ticket, so do\n\
         not forward this mail. If you did not expect a ticket, ignore it.\n",
        sender = mail.sender,
        event = mail.event_name,
        tier = mail.tier_name,
        expires = utc_minute(mail.expires_at),
        link = claim_link(claim_url, &mail.secret),
    );
    Ok(Message::builder()
        .from(from.clone())
        .to(mailbox("to", &mail.to)?)
        .subject(format!(
            "A ticket for {} is waiting for you",
            mail.event_name
        ))
        .message_id(Some(message_id(from)))
        .singlepart(SinglePart::plain(text))?)
}

/// Sends the API's mail.
pub trait Mailer: Send + Sync + 'static {
    fn send_ticket_confirmation<'a>(
        &'a self,
        mail: &'a TicketConfirmation,
    ) -> BoxFuture<'a, Result<(), MailError>>;

    fn send_transfer_claim<'a>(
        &'a self,
        mail: &'a TransferClaim,
    ) -> BoxFuture<'a, Result<(), MailError>>;

    fn send_refund_notice<'a>(
        &'a self,
        mail: &'a RefundNotice,
    ) -> BoxFuture<'a, Result<(), MailError>>;

    /// Whether the relay answers (connects and greets); for `/health`.
    fn check(&self) -> BoxFuture<'_, Result<(), MailError>>;
}

/// Sends through an SMTP relay, a new connection per message.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    claim_url: String,
}

impl SmtpMailer {
    pub fn new(settings: &SmtpSettings) -> Result<Self, MailError> {
        if settings.host.is_empty() {
            return Err(MailError::Disabled);
        }
        let tls = match settings.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::Starttls => Tls::Required(TlsParameters::new(settings.host.clone())?),
            SmtpTls::Tls => Tls::Wrapper(TlsParameters::new(settings.host.clone())?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
            .port(settings.port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(u64::from(settings.timeout_secs))));
        if !settings.username.is_empty() {
            builder = builder.credentials(Credentials::new(
                settings.username.clone(),
                settings.password.clone(),
            ));
        }
        Ok(Self {
            transport: builder.build(),
            from: mailbox("smtp.from", &settings.from)?,
            claim_url: settings.claim_url.clone(),
        })
    }

    async fn send(&self, message: Message, kind: &'static str) -> Result<(), MailError> {
        let started = SystemTime::now();
        let result = self.transport.send(message).await;
        let elapsed_ms = started.elapsed().map(|d| d.as_millis()).unwrap_or(0);
        match result {
            Ok(response) => {
                tracing::info!(kind, elapsed_ms, code = %response.code(), "mail handed to the relay");
                Ok(())
            }
            Err(e) => {
                tracing::warn!(kind, elapsed_ms, error = %e, "mail not sent");
                Err(e.into())
            }
        }
    }
}

impl Mailer for SmtpMailer {
    fn send_ticket_confirmation<'a>(
        &'a self,
        mail: &'a TicketConfirmation,
    ) -> BoxFuture<'a, Result<(), MailError>> {
        Box::pin(async move {
            let message = ticket_confirmation(&self.from, mail)?;
            self.send(message, "ticket_confirmation").await
        })
    }

    fn send_transfer_claim<'a>(
        &'a self,
        mail: &'a TransferClaim,
    ) -> BoxFuture<'a, Result<(), MailError>> {
        Box::pin(async move {
            let message = transfer_claim(&self.from, &self.claim_url, mail)?;
            self.send(message, "transfer_claim").await
        })
    }

    fn send_refund_notice<'a>(
        &'a self,
        mail: &'a RefundNotice,
    ) -> BoxFuture<'a, Result<(), MailError>> {
        Box::pin(async move {
            let message = refund_notice(&self.from, mail)?;
            self.send(message, "refund_notice").await
        })
    }

    fn check(&self) -> BoxFuture<'_, Result<(), MailError>> {
        Box::pin(async move {
            match self.transport.test_connection().await {
                Ok(true) => Ok(()),
                Ok(false) => Err(MailError::Unreachable("the relay did not greet".into())),
                Err(e) => Err(e.into()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim() -> TransferClaim {
        TransferClaim {
            to: "bea@example.org".into(),
            event_name: "Harbour Lights".into(),
            tier_name: "vip".into(),
            sender: "Ana".into(),
            secret: ClaimSecret::new("s3cr3t-claim-code_0123456789").unwrap(),
            expires_at: 1_764_075_600,
        }
    }

    #[test]
    fn amounts_are_written_in_the_currencys_units() {
        assert_eq!(format_amount(2500, "usd"), "25.00 USD");
        assert_eq!(format_amount(5, "eur"), "0.05 EUR");
        assert_eq!(format_amount(2500, "jpy"), "2500 JPY");
    }

    #[test]
    fn claim_secrets_are_url_safe_and_never_printed() {
        assert!(ClaimSecret::new("short").is_err());
        assert!(ClaimSecret::new("with space 0123456789").is_err());
        assert!(ClaimSecret::new("https://evil/?x=0123456789").is_err());
        let mail = claim();
        let debug = format!("{mail:?}");
        assert!(!debug.contains(mail.secret.expose()), "{debug}");
        assert_eq!(
            claim_link("https://t.example/claim", &mail.secret),
            "https://t.example/claim?code=s3cr3t-claim-code_0123456789"
        );
        assert_eq!(
            claim_link("https://t.example/claim?lang=de", &mail.secret),
            "https://t.example/claim?lang=de&code=s3cr3t-claim-code_0123456789"
        );
    }

    #[test]
    fn the_claim_mail_names_sender_event_and_expiry() {
        let from: Mailbox = "Tickets <tickets@example.org>".parse().unwrap();
        let message = transfer_claim(&from, "https://t.example/claim", &claim()).unwrap();
        let text = String::from_utf8(message.formatted()).unwrap();
        assert!(text.contains("Subject: A ticket for Harbour Lights is waiting for you"));
        assert!(text.contains("Ana sent you a ticket for Harbour Lights (vip)."));
        assert!(
            text.contains("Claim it before 2025-11-25 13:00 UTC:"),
            "{text}"
        );
        assert!(
            text.contains("@example.org>"),
            "Message-ID in the sender's domain"
        );
    }

    #[test]
    fn settings_are_checked() {
        assert!(SmtpSettings::default().validate().is_ok());
        let bad = [
            SmtpSettings {
                from: "not an address".into(),
                ..SmtpSettings::default()
            },
            SmtpSettings {
                claim_url: "ftp://x".into(),
                ..SmtpSettings::default()
            },
            SmtpSettings {
                username: "only-user".into(),
                ..SmtpSettings::default()
            },
        ];
        for settings in bad {
            assert!(settings.validate().is_err(), "{settings:?}");
        }
        assert!(matches!(
            SmtpMailer::new(&SmtpSettings::default()),
            Err(MailError::Disabled)
        ));
    }
}
