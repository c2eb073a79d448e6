//! Mail through a real SMTP server on a local port: the test reads what was
//! delivered, as a recipient's mail program would.

#![allow(clippy::unwrap_used)]

#[path = "support/smtp_sink.rs"]
mod smtp_sink;

use std::io::Cursor;

use image::{ImageFormat, Luma};
use mail_parser::{MessageParser, MimeHeaders};
use smtp_sink::{SinkRules, SmtpSink};
use sync_server::adapters::mail::{
    ClaimSecret, GateCode, MailError, Mailer, SmtpMailer, TicketConfirmation, TransferClaim,
};
use sync_server::config::{SmtpSettings, SmtpTls};

fn settings(sink: &SmtpSink) -> SmtpSettings {
    SmtpSettings {
        host: sink.addr.ip().to_string(),
        port: sink.addr.port(),
        tls: SmtpTls::None,
        from: "Harbour Tickets <tickets@harbour.example>".into(),
        claim_url: "https://harbour.example/claim".into(),
        timeout_secs: 10,
        ..SmtpSettings::default()
    }
}

/// A real ticket QR code, rendered to PNG.
fn qr_png() -> (Vec<u8>, image::GrayImage) {
    let code = qrcode::QrCode::new(b"NFTGATE1:EXAMPLE-CREDENTIAL-BYTES").unwrap();
    let picture = code.render::<Luma<u8>>().min_dimensions(200, 200).build();
    let mut png = Vec::new();
    picture
        .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
        .unwrap();
    (png, picture)
}

#[tokio::test]
async fn ticket_confirmation_arrives_with_the_qr_code_as_a_png_attachment() {
    let mut sink = SmtpSink::start(SinkRules::default()).await;
    let mailer = SmtpMailer::new(&settings(&sink)).unwrap();
    let (png, picture) = qr_png();
    mailer
        .send_ticket_confirmation(&TicketConfirmation {
            to: "ana@example.org".into(),
            event_name: "Harbour Lights".into(),
            ticket_id: 42,
            tier_name: "vip".into(),
            gate_code: GateCode::Static {
                qr_png: png.clone(),
            },
        })
        .await
        .unwrap();

    let delivery = sink.next().await;
    assert_eq!(delivery.mail_from, "tickets@harbour.example");
    assert_eq!(delivery.rcpt_to, ["ana@example.org"]);
    assert_eq!(delivery.login, None);
    let message = MessageParser::default().parse(&delivery.data).unwrap();
    assert_eq!(message.subject(), Some("Your ticket for Harbour Lights"));
    assert_eq!(
        message.to().unwrap().first().unwrap().address(),
        Some("ana@example.org")
    );
    let from = message.from().unwrap().first().unwrap();
    assert_eq!(from.name(), Some("Harbour Tickets"));
    let text = message.body_text(0).unwrap();
    assert!(
        text.contains("your ticket for Harbour Lights is confirmed"),
        "{text}"
    );
    assert!(text.contains("Ticket: #42"), "{text}");

    let attachments: Vec<_> = message.attachments().collect();
    assert_eq!(attachments.len(), 1);
    let qr = attachments[0];
    assert_eq!(qr.attachment_name(), Some("ticket-42.png"));
    assert!(qr.is_content_type("image", "png"));
    assert_eq!(
        qr.contents(),
        png.as_slice(),
        "the PNG arrives byte for byte"
    );
    let decoded = image::load_from_memory_with_format(qr.contents(), ImageFormat::Png)
        .unwrap()
        .to_luma8();
    assert_eq!(decoded, picture, "and decodes to the same QR picture");
}

/// Where the gates need the holder's live code, the mail carries no code
/// (a static one would be refused) and says where the live one is.
#[tokio::test]
async fn a_ticket_for_live_codes_is_confirmed_with_the_way_to_my_tickets() {
    let mut sink = SmtpSink::start(SinkRules::default()).await;
    let mailer = SmtpMailer::new(&settings(&sink)).unwrap();
    mailer
        .send_ticket_confirmation(&TicketConfirmation {
            to: "ana@example.org".into(),
            event_name: "Harbour Lights".into(),
            ticket_id: 43,
            tier_name: "vip".into(),
            gate_code: GateCode::Live {
                tickets_url: "https://harbour.example/tickets".into(),
            },
        })
        .await
        .unwrap();
    let delivery = sink.next().await;
    let message = MessageParser::default().parse(&delivery.data).unwrap();
    assert_eq!(message.attachments().count(), 0, "no code to show");
    let text = message.body_text(0).unwrap();
    assert!(
        text.contains("your ticket for Harbour Lights is confirmed"),
        "{text}"
    );
    assert!(text.contains("Ticket: #43"), "{text}");
    assert!(text.contains("live code"), "{text}");
    assert!(
        text.lines()
            .any(|line| line.trim() == "https://harbour.example/tickets"),
        "the link on a line of its own: {text}"
    );
    assert!(!text.contains("attached"), "{text}");
}

#[tokio::test]
async fn the_claim_secret_is_in_the_link_and_nowhere_else() {
    let mut sink = SmtpSink::start(SinkRules::default()).await;
    let mailer = SmtpMailer::new(&settings(&sink)).unwrap();
    let secret = "Zq8vN3kLx2Pw7RtY5mHcJ4sD9fGbA1eU";
    mailer
        .send_transfer_claim(&TransferClaim {
            to: "bea@example.org".into(),
            event_name: "Harbour Lights".into(),
            tier_name: "general".into(),
            sender: "Ana".into(),
            secret: ClaimSecret::new(secret).unwrap(),
            expires_at: 1_764_075_600,
        })
        .await
        .unwrap();

    let delivery = sink.next().await;
    assert_eq!(delivery.rcpt_to, ["bea@example.org"]);
    let message = MessageParser::default().parse(&delivery.data).unwrap();
    assert_eq!(
        message.subject(),
        Some("A ticket for Harbour Lights is waiting for you")
    );
    let text = message.body_text(0).unwrap();
    let link = format!("https://harbour.example/claim?code={secret}");
    assert!(
        text.lines().any(|line| line.trim() == link),
        "the link stands on its own line: {text}"
    );
    assert_eq!(text.matches(secret).count(), 1, "{text}");
    let raw = String::from_utf8_lossy(&delivery.data);
    assert_eq!(raw.matches(secret).count(), 1, "not in any header: {raw}");
    assert!(
        text.contains("Claim it before 2025-11-25 13:00 UTC"),
        "{text}"
    );
}

#[tokio::test]
async fn the_relay_login_is_used_when_configured() {
    let mut sink = SmtpSink::start(SinkRules::default()).await;
    let mailer = SmtpMailer::new(&SmtpSettings {
        username: "relay-user".into(),
        password: "relay-password".into(),
        ..settings(&sink)
    })
    .unwrap();
    mailer
        .send_ticket_confirmation(&TicketConfirmation {
            to: "ana@example.org".into(),
            event_name: "Harbour Lights".into(),
            ticket_id: 7,
            tier_name: "general".into(),
            gate_code: GateCode::Static { qr_png: qr_png().0 },
        })
        .await
        .unwrap();
    assert_eq!(
        sink.next().await.login,
        Some(("relay-user".into(), "relay-password".into()))
    );
}

#[tokio::test]
async fn refusals_say_whether_a_retry_can_help() {
    let mut sink = SmtpSink::start(SinkRules {
        unknown_recipients: vec!["nobody@example.org".into()],
    })
    .await;
    let mailer = SmtpMailer::new(&settings(&sink)).unwrap();
    let mail = TicketConfirmation {
        to: "nobody@example.org".into(),
        event_name: "Harbour Lights".into(),
        ticket_id: 1,
        tier_name: "general".into(),
        gate_code: GateCode::Static { qr_png: qr_png().0 },
    };
    let err = mailer.send_ticket_confirmation(&mail).await.unwrap_err();
    assert!(matches!(err, MailError::Smtp(_)), "{err}");
    assert!(
        err.is_permanent(),
        "an unknown mailbox stays unknown: {err}"
    );
    assert!(sink.is_empty());

    let bad_address = TicketConfirmation {
        to: "not an address".into(),
        ..mail.clone()
    };
    let err = mailer
        .send_ticket_confirmation(&bad_address)
        .await
        .unwrap_err();
    assert!(
        matches!(err, MailError::Address { field: "to", .. }),
        "{err}"
    );

    // Nothing listens here any more: a transient failure.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let gone = SmtpMailer::new(&SmtpSettings {
        port,
        ..settings(&sink)
    })
    .unwrap();
    let err = gone
        .send_ticket_confirmation(&TicketConfirmation {
            to: "ana@example.org".into(),
            ..mail
        })
        .await
        .unwrap_err();
    assert!(!err.is_permanent(), "{err}");
}
