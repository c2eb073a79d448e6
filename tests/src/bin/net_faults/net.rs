//! The venue's network: one namespace for the server, one per gate, each
//! gate joined to the server by its own link, and a fault-free management
//! link from the driver's namespace to every other one (admin API, status
//! pages), so observing never goes through a fault.
//!
//! A gate's link is a veth pair impaired with `tc netem` where the kernel has
//! it, or else a TUN pair with this process as the wire between them, which
//! applies the same impairments (netem's semantics) in userspace. Either way
//! the gate and the server talk through their real kernels' TCP stacks.

use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{Read, Write};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Runs `ip`/`tc` with `args`; fails with its stderr.
pub fn run(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// What a link does to packets, in netem's terms (both directions).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Impairment {
    /// Share of packets dropped, 0 to 1 (1: a partition).
    pub loss: f64,
    pub delay_ms: u32,
    /// Each packet's delay is `delay_ms` plus or minus up to this.
    pub jitter_ms: u32,
    /// Share of packets sent at once, ahead of the delayed ones.
    pub reorder: f64,
    /// Share of packets sent twice.
    pub duplicate: f64,
}

impl Impairment {
    pub fn is_clear(&self) -> bool {
        *self == Self::default()
    }

    /// The `tc qdisc ... netem` arguments.
    pub fn netem_args(&self) -> Vec<String> {
        let mut args = vec!["netem".to_owned()];
        if self.loss > 0.0 {
            args.extend(["loss".into(), percent(self.loss)]);
        }
        if self.delay_ms > 0 {
            args.extend(["delay".into(), format!("{}ms", self.delay_ms)]);
            if self.jitter_ms > 0 {
                args.push(format!("{}ms", self.jitter_ms));
            }
        }
        if self.reorder > 0.0 {
            args.extend(["reorder".into(), percent(self.reorder)]);
        }
        if self.duplicate > 0.0 {
            args.extend(["duplicate".into(), percent(self.duplicate)]);
        }
        args
    }
}

/// `0.15` as netem's `15%`.
fn percent(share: f64) -> String {
    format!("{:.2}%", share * 100.0)
}

/// How gate links are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LinkKind {
    /// veth pairs impaired by `tc netem` (needs the kernel's sch_netem).
    Netem,
    /// TUN pairs joined by this process, which impairs them itself.
    Wire,
}

/// Whether `tc netem` works here (tried on the loopback of `namespace`).
pub fn netem_available(namespace: &str) -> bool {
    let ok = run(
        "tc",
        &[
            "-n", namespace, "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms",
        ],
    )
    .is_ok();
    let _ = run(
        "tc",
        &["-n", namespace, "qdisc", "del", "dev", "lo", "root"],
    );
    ok
}

/// The server's address on gate `n`'s link (1-based), and the gate's.
pub fn data_addresses(n: usize) -> (String, String) {
    (format!("10.77.{n}.1"), format!("10.77.{n}.2"))
}

/// The management addresses of namespace `n` (0: the server, 1..: gates):
/// the driver's end and the namespace's end.
pub fn mgmt_addresses(n: usize) -> (String, String) {
    (format!("10.78.{n}.1"), format!("10.78.{n}.2"))
}

/// A fault-free veth from the driver's namespace into `namespace`.
pub fn management_link(namespace: &str, n: usize) -> anyhow::Result<()> {
    let (here, there) = mgmt_addresses(n);
    let near = format!("m{n}");
    let far = format!("m{n}p");
    run(
        "ip",
        &[
            "link", "add", "name", &near, "type", "veth", "peer", "name", &far, "netns", namespace,
        ],
    )?;
    run("ip", &["addr", "add", &format!("{here}/24"), "dev", &near])?;
    run("ip", &["link", "set", "dev", &near, "up"])?;
    run(
        "ip",
        &[
            "-n",
            namespace,
            "addr",
            "add",
            &format!("{there}/24"),
            "dev",
            &far,
        ],
    )?;
    run("ip", &["-n", namespace, "link", "set", "dev", &far, "up"])?;
    run("ip", &["-n", namespace, "link", "set", "dev", "lo", "up"])?;
    Ok(())
}

/// One gate's link to the server.
pub struct GateLink {
    pub server_ns: String,
    pub gate_ns: String,
    /// Device names on the server's and the gate's side.
    pub server_dev: String,
    pub gate_dev: String,
    kind: LinkKind,
    wire: Option<Arc<WireControl>>,
}

impl GateLink {
    /// Links gate `n` (1-based) in `gate_ns` to the server in `server_ns`.
    pub fn create(
        kind: LinkKind,
        server_ns: &str,
        gate_ns: &str,
        n: usize,
        seed: u64,
    ) -> anyhow::Result<Self> {
        let server_dev = format!("d{n}s");
        let gate_dev = format!("d{n}g");
        let (server_ip, gate_ip) = data_addresses(n);
        let wire = match kind {
            LinkKind::Netem => {
                run(
                    "ip",
                    &[
                        "-n",
                        server_ns,
                        "link",
                        "add",
                        "name",
                        &server_dev,
                        "type",
                        "veth",
                        "peer",
                        "name",
                        &gate_dev,
                        "netns",
                        gate_ns,
                    ],
                )?;
                None
            }
            LinkKind::Wire => {
                let server_tun = open_tun(&server_dev)?;
                let gate_tun = open_tun(&gate_dev)?;
                run(
                    "ip",
                    &["link", "set", "dev", &server_dev, "netns", server_ns],
                )?;
                run("ip", &["link", "set", "dev", &gate_dev, "netns", gate_ns])?;
                Some(WireControl::start(server_tun, gate_tun, seed)?)
            }
        };
        for (ns, dev, ip, peer) in [
            (server_ns, &server_dev, &server_ip, &gate_ip),
            (gate_ns, &gate_dev, &gate_ip, &server_ip),
        ] {
            match kind {
                LinkKind::Netem => run(
                    "ip",
                    &["-n", ns, "addr", "add", &format!("{ip}/24"), "dev", dev],
                )?,
                LinkKind::Wire => run(
                    "ip",
                    &[
                        "-n",
                        ns,
                        "addr",
                        "add",
                        ip,
                        "peer",
                        &format!("{peer}/32"),
                        "dev",
                        dev,
                    ],
                )?,
            }
            run("ip", &["-n", ns, "link", "set", "dev", dev, "up"])?;
            run("ip", &["-n", ns, "link", "set", "dev", "lo", "up"])?;
        }
        Ok(Self {
            server_ns: server_ns.to_owned(),
            gate_ns: gate_ns.to_owned(),
            server_dev,
            gate_dev,
            kind,
            wire,
        })
    }

    fn ends(&self) -> [(&str, &str); 2] {
        [
            (&self.server_ns, &self.server_dev),
            (&self.gate_ns, &self.gate_dev),
        ]
    }

    /// Impairs both directions (a clear impairment removes it).
    pub fn impair(&self, imp: &Impairment) -> anyhow::Result<()> {
        match (&self.kind, &self.wire) {
            (LinkKind::Wire, Some(wire)) => {
                if let Ok(mut current) = wire.impairment.lock() {
                    *current = *imp;
                }
                Ok(())
            }
            _ => {
                for (ns, dev) in self.ends() {
                    if imp.is_clear() {
                        // Nothing to delete is fine.
                        let _ = run("tc", &["-n", ns, "qdisc", "del", "dev", dev, "root"]);
                        continue;
                    }
                    let args = imp.netem_args();
                    let mut all = vec!["-n", ns, "qdisc", "replace", "dev", dev, "root"];
                    all.extend(args.iter().map(String::as_str));
                    run("tc", &all)?;
                }
                Ok(())
            }
        }
    }

    /// The cable out (`up == false`) or back in: both ends lose carrier.
    pub fn set_up(&self, up: bool) -> anyhow::Result<()> {
        let state = if up { "up" } else { "down" };
        for (ns, dev) in self.ends() {
            run("ip", &["-n", ns, "link", "set", "dev", dev, state])?;
        }
        Ok(())
    }

    /// Packets the userspace wire carried, dropped and duplicated.
    pub fn wire_counts(&self) -> Option<(u64, u64, u64)> {
        let wire = self.wire.as_ref()?;
        let c = wire.counts.lock().ok()?;
        Some(*c)
    }
}

impl Drop for GateLink {
    fn drop(&mut self) {
        if let Some(wire) = &self.wire {
            wire.stop.store(true, Ordering::SeqCst);
        }
    }
}

/// Opens a new TUN device `name` (IP packets, no packet-info header) in this
/// namespace; it lives as long as the returned file.
#[allow(unsafe_code)]
fn open_tun(name: &str) -> anyhow::Result<File> {
    use std::os::fd::AsRawFd;
    let file = File::options()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .context("cannot open /dev/net/tun")?;
    // SAFETY: `ifreq` is plain old data, for which all-zero bytes are valid.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    if name.len() >= request.ifr_name.len() {
        bail!("device name {name} is too long");
    }
    for (slot, byte) in request.ifr_name.iter_mut().zip(name.bytes()) {
        *slot = byte as libc::c_char;
    }
    request.ifr_ifru.ifru_flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
    // SAFETY: TUNSETIFF reads and writes one `ifreq`, which lives across the
    // call; the descriptor is open.
    let rc = unsafe {
        libc::ioctl(
            file.as_raw_fd(),
            libc::TUNSETIFF,
            &mut request as *mut libc::ifreq,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error()).context(format!("TUNSETIFF {name}"));
    }
    Ok(file)
}

/// The userspace wire's shared settings and counts.
pub struct WireControl {
    impairment: Mutex<Impairment>,
    /// Carried, dropped, duplicated.
    counts: Mutex<(u64, u64, u64)>,
    stop: AtomicBool,
}

/// A packet waiting for its time on the wire.
struct Pending {
    due: Instant,
    order: u64,
    packet: Vec<u8>,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.order) == (other.due, other.order)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    // Earliest first out of a max-heap.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.due, other.order).cmp(&(self.due, self.order))
    }
}

impl WireControl {
    fn start(a: File, b: File, seed: u64) -> anyhow::Result<Arc<Self>> {
        let control = Arc::new(Self {
            impairment: Mutex::new(Impairment::default()),
            counts: Mutex::new((0, 0, 0)),
            stop: AtomicBool::new(false),
        });
        let a_out = a.try_clone()?;
        let b_out = b.try_clone()?;
        control.direction(a, b_out, seed)?;
        control.direction(b, a_out, seed ^ 0x9e37_79b9_7f4a_7c15)?;
        Ok(control)
    }

    /// Carries packets read from `from` to `to`: a reader thread applies
    /// loss and duplication and stamps each copy with its due time; a
    /// writer thread sends them when due (so jitter and `reorder` reorder).
    fn direction(self: &Arc<Self>, mut from: File, mut to: File, seed: u64) -> anyhow::Result<()> {
        let queue: Arc<(Mutex<BinaryHeap<Pending>>, std::sync::Condvar)> = Arc::default();
        let (control, q) = (Arc::clone(self), Arc::clone(&queue));
        std::thread::Builder::new()
            .name("wire-read".into())
            .spawn(move || {
                let mut rng = crate::plan::Rng::new(seed);
                let mut buf = vec![0u8; 65_536];
                let mut order = 0u64;
                while !control.stop.load(Ordering::SeqCst) {
                    let n = match from.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        // A device taken down answers EIO for a while.
                        Err(_) => {
                            std::thread::sleep(Duration::from_millis(20));
                            continue;
                        }
                    };
                    let imp = control.impairment.lock().map(|i| *i).unwrap_or_default();
                    if rng.chance(imp.loss) {
                        control.count(0, 1, 0);
                        continue;
                    }
                    let copies = if rng.chance(imp.duplicate) { 2 } else { 1 };
                    if copies == 2 {
                        control.count(0, 0, 1);
                    }
                    let now = Instant::now();
                    let (lock, ready) = &*q;
                    let Ok(mut heap) = lock.lock() else { break };
                    for _ in 0..copies {
                        let delay = if imp.delay_ms == 0 || rng.chance(imp.reorder) {
                            0
                        } else {
                            let jitter = i64::from(imp.jitter_ms);
                            let spread = rng.below((2 * jitter + 1) as u64) as i64 - jitter;
                            (i64::from(imp.delay_ms) + spread).max(0) as u64
                        };
                        order += 1;
                        heap.push(Pending {
                            due: now + Duration::from_millis(delay),
                            order,
                            packet: buf[..n].to_vec(),
                        });
                    }
                    ready.notify_one();
                }
            })?;
        let control = Arc::clone(self);
        std::thread::Builder::new()
            .name("wire-write".into())
            .spawn(move || {
                let (lock, ready) = &*queue;
                while !control.stop.load(Ordering::SeqCst) {
                    let Ok(mut heap) = lock.lock() else { break };
                    let now = Instant::now();
                    let wait = match heap.peek() {
                        Some(p) if p.due <= now => None,
                        Some(p) => Some(p.due - now),
                        None => Some(Duration::from_millis(50)),
                    };
                    if let Some(wait) = wait {
                        let _ = ready.wait_timeout(heap, wait.min(Duration::from_millis(50)));
                        continue;
                    }
                    let Some(p) = heap.pop() else { continue };
                    drop(heap);
                    // A device that is down refuses the packet: lost, as on
                    // a cable that is out.
                    if to.write_all(&p.packet).is_ok() {
                        control.count(1, 0, 0);
                    } else {
                        control.count(0, 1, 0);
                    }
                }
            })?;
        Ok(())
    }

    fn count(&self, carried: u64, dropped: u64, duplicated: u64) {
        if let Ok(mut c) = self.counts.lock() {
            c.0 += carried;
            c.1 += dropped;
            c.2 += duplicated;
        }
    }
}
