//! A real SMTP server for tests: listens on a local port, speaks enough of
//! RFC 5321 for a mail client (EHLO/HELO, AUTH PLAIN, MAIL, RCPT, DATA with
//! dot-unstuffing, RSET, NOOP, QUIT) and hands every accepted message to the
//! test instead of delivering it.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;

use data_encoding::BASE64;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// One message as the sink received it.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The envelope sender and recipients (MAIL FROM / RCPT TO).
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The message as sent after DATA, dot-unstuffed, without the final dot.
    pub data: Vec<u8>,
    /// (user, password) of AUTH PLAIN, when the client logged in.
    pub login: Option<(String, String)>,
}

pub struct SmtpSink {
    pub addr: SocketAddr,
    deliveries: mpsc::UnboundedReceiver<Delivery>,
    /// Connections the sink accepted (one per SMTP session).
    sessions: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// How the sink behaves.
#[derive(Clone, Default)]
pub struct SinkRules {
    /// Recipients answered with 550 (no such user).
    pub unknown_recipients: Vec<String>,
}

impl SmtpSink {
    pub async fn start(rules: SinkRules) -> Self {
        Self::start_on(TcpListener::bind("127.0.0.1:0").await.unwrap(), rules)
    }

    /// A sink on a listener the test bound (e.g. on a port a server was
    /// told about before the sink existed).
    pub fn start_on(listener: TcpListener, rules: SinkRules) -> Self {
        let addr = listener.local_addr().unwrap();
        let (tx, deliveries) = mpsc::unbounded_channel();
        let sessions = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = std::sync::Arc::clone(&sessions);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let (tx, rules) = (tx.clone(), rules.clone());
                tokio::spawn(async move {
                    // A client hanging up mid-session is not the sink's failure.
                    let _ = session(stream, tx, rules).await;
                });
            }
        });
        Self {
            addr,
            deliveries,
            sessions,
        }
    }

    /// How many SMTP sessions clients opened so far.
    pub fn sessions(&self) -> usize {
        self.sessions.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The next delivered message (panics after 10 s without one).
    pub async fn next(&mut self) -> Delivery {
        tokio::time::timeout(std::time::Duration::from_secs(10), self.deliveries.recv())
            .await
            .expect("no mail arrived at the sink within 10 s")
            .unwrap()
    }

    /// Nothing more was delivered.
    pub fn is_empty(&mut self) -> bool {
        self.deliveries.try_recv().is_err()
    }
}

/// `<addr>` out of `FROM:<addr> SIZE=123`.
fn angle_address(argument: &str) -> String {
    argument
        .split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(address, _)| address.to_owned())
        .unwrap_or_default()
}

async fn session(
    stream: TcpStream,
    deliveries: mpsc::UnboundedSender<Delivery>,
    rules: SinkRules,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write
        .write_all(b"220 sink.test ESMTP test sink\r\n")
        .await?;
    let mut mail_from: Option<String> = None;
    let mut rcpt_to = Vec::new();
    let mut login = None;
    let mut line = Vec::new();
    loop {
        line.clear();
        if lines.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end();
        let (verb, argument) = text.split_once(' ').unwrap_or((text, ""));
        let reply: &[u8] = match verb.to_ascii_uppercase().as_str() {
            "EHLO" => b"250-sink.test greets you\r\n250-8BITMIME\r\n250-AUTH PLAIN\r\n250 SIZE 10485760\r\n",
            "HELO" => b"250 sink.test\r\n",
            "AUTH" => {
                let (mechanism, initial) = argument.split_once(' ').unwrap_or((argument, ""));
                if !mechanism.eq_ignore_ascii_case("PLAIN") {
                    b"504 5.5.4 only PLAIN\r\n"
                } else {
                    let encoded = if initial.is_empty() {
                        write.write_all(b"334 \r\n").await?;
                        let mut answer = Vec::new();
                        lines.read_until(b'\n', &mut answer).await?;
                        String::from_utf8_lossy(&answer).trim().to_owned()
                    } else {
                        initial.to_owned()
                    };
                    // authzid \0 authcid \0 password
                    let decoded = BASE64.decode(encoded.as_bytes()).unwrap_or_default();
                    let parts: Vec<String> = decoded
                        .split(|b| *b == 0)
                        .map(|p| String::from_utf8_lossy(p).into_owned())
                        .collect();
                    if parts.len() == 3 {
                        login = Some((parts[1].clone(), parts[2].clone()));
                        b"235 2.7.0 authenticated\r\n"
                    } else {
                        b"501 5.5.2 malformed AUTH PLAIN\r\n"
                    }
                }
            }
            "MAIL" => {
                mail_from = Some(angle_address(argument));
                rcpt_to.clear();
                b"250 2.1.0 sender ok\r\n"
            }
            "RCPT" => {
                let recipient = angle_address(argument);
                if mail_from.is_none() {
                    b"503 5.5.1 MAIL first\r\n"
                } else if rules.unknown_recipients.contains(&recipient) {
                    b"550 5.1.1 no such user here\r\n"
                } else {
                    rcpt_to.push(recipient);
                    b"250 2.1.5 recipient ok\r\n"
                }
            }
            "DATA" => {
                if rcpt_to.is_empty() {
                    b"503 5.5.1 RCPT first\r\n"
                } else {
                    write
                        .write_all(b"354 end data with <CR><LF>.<CR><LF>\r\n")
                        .await?;
                    let mut data = Vec::new();
                    loop {
                        line.clear();
                        if lines.read_until(b'\n', &mut line).await? == 0 {
                            return Ok(());
                        }
                        if line == b".\r\n" {
                            break;
                        }
                        // RFC 5321 4.5.2: a leading dot was doubled by the client.
                        let unstuffed = if line.starts_with(b"..") { &line[1..] } else { &line[..] };
                        data.extend_from_slice(unstuffed);
                    }
                    let _ = deliveries.send(Delivery {
                        mail_from: mail_from.take().unwrap_or_default(),
                        rcpt_to: std::mem::take(&mut rcpt_to),
                        data,
                        login: login.clone(),
                    });
                    b"250 2.0.0 queued\r\n"
                }
            }
            "RSET" => {
                mail_from = None;
                rcpt_to.clear();
                b"250 2.0.0 reset\r\n"
            }
            "NOOP" => b"250 2.0.0 ok\r\n",
            "QUIT" => {
                write.write_all(b"221 2.0.0 bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 5.5.2 command not recognized\r\n",
        };
        write.write_all(reply).await?;
    }
}
