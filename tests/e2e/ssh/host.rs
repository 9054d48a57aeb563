//! A machine without aienv that accepts SSH, made for one test: a network namespace reached
//! from this one over a veth pair (nothing else: no default route), the system's `sshd` in it
//! with a host key, authorized keys and pid file of the test's own, and `/root` there replaced by
//! a temp folder (sshd and its sessions live in a mount namespace of their own, so the copy a
//! run makes in `~/.cache` lands in that folder). Beside it, the client side: a private
//! `ssh-agent`, a key pair, and an `ssh` wrapper that reads the test's own `ssh_config`
//! (known hosts in temp, new host keys accepted), since ssh takes `~/.ssh` from the password
//! database, not `HOME`, and the user's own must stay untouched.
//!
//! Everything is removed on drop, also when the test fails half-way: the processes in the
//! namespace, sshd, the agent, the veth pair and the namespace.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use aienv_e2e::{text, wait_for};

/// Where sshd listens inside the namespace (its own network: any port is free there).
pub const PORT: u16 = 2222;

pub struct SshHost {
    pub ns: String,
    veth: String,
    /// The namespace's address, as the node reaches it.
    pub addr: String,
    pub tmp: tempfile::TempDir,
    sshd: Option<Child>,
    agent: Option<Child>,
}

/// What the test needs that this machine may lack.
pub fn unsupported() -> Option<String> {
    if let Some(why) = crate::netns::unsupported() {
        return Some(why);
    }
    for tool in [
        "/usr/sbin/sshd",
        "/usr/bin/ssh",
        "/usr/bin/ssh-agent",
        "/usr/bin/ssh-keygen",
    ] {
        if !Path::new(tool).exists() {
            return Some(format!(
                "needs OpenSSH ({tool} is missing: apt install openssh-server openssh-client)"
            ));
        }
    }
    if Command::new("python3").arg("-V").output().is_err() {
        return Some("needs python3 (the run's tool is python3 -m http.server)".into());
    }
    None
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} could not run: {e}"))
}

fn must(program: &str, args: &[&str]) {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {:?}",
        text(&out)
    );
}

impl SshHost {
    pub fn new() -> SshHost {
        let id = std::process::id();
        // Names of at most 15 bytes; an address pair of its own per test process, so that two
        // runs of the suite at once do not collide.
        let ns = format!("aes{}", id % 1_000_000);
        let veth = format!("aes{}v", id % 1_000_000);
        let (a, b) = (id % 256, (id / 256) % 64 * 4);
        let host_side = format!("10.78.{a}.{}", b + 1);
        let addr = format!("10.78.{a}.{}", b + 2);
        let mut h = SshHost {
            ns: ns.clone(),
            veth: veth.clone(),
            addr: addr.clone(),
            tmp: tempfile::tempdir().unwrap(),
            sshd: None,
            agent: None,
        };
        must("ip", &["netns", "add", &ns]);
        must(
            "ip",
            &[
                "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ],
        );
        must(
            "ip",
            &["addr", "add", &format!("{host_side}/30"), "dev", &veth],
        );
        must("ip", &["link", "set", &veth, "up"]);
        must(
            "ip",
            &[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{addr}/30"),
                "dev",
                "eth0",
            ],
        );
        must("ip", &["-n", &ns, "link", "set", "eth0", "up"]);
        must("ip", &["-n", &ns, "link", "set", "lo", "up"]);
        h.start_sshd();
        h.start_agent();
        h.write_client_config();
        h
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    fn p(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// The folder that is `/root` for whoever logs in.
    pub fn home(&self) -> PathBuf {
        self.path("home")
    }

    fn start_sshd(&mut self) {
        let t = self.tmp.path();
        must(
            "ssh-keygen",
            &["-q", "-t", "ed25519", "-N", "", "-f", &self.p("host_key")],
        );
        must(
            "ssh-keygen",
            &["-q", "-t", "ed25519", "-N", "", "-f", &self.p("client_key")],
        );
        std::fs::create_dir_all(self.home()).unwrap();
        std::fs::write(self.path("authorized_keys"), "").unwrap();
        std::fs::write(
            self.path("sshd_config"),
            format!(
                "HostKey {t}/host_key\n\
                 AuthorizedKeysFile {t}/authorized_keys\n\
                 PidFile {t}/sshd.pid\n\
                 ListenAddress {addr}\n\
                 UsePAM no\n\
                 StrictModes no\n\
                 PasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\n\
                 PermitRootLogin prohibit-password\n",
                t = t.display(),
                addr = self.addr
            ),
        )
        .unwrap();
        // In the mount namespace `ip netns exec` makes: /root becomes the temp home, and /run a
        // tmpfs holding the privilege separation folder sshd insists on.
        let script = format!(
            "mount --bind {home} /root && mount -t tmpfs -o mode=755 aienv-test /run && \
             mkdir /run/sshd && exec /usr/sbin/sshd -D -e -f {t}/sshd_config -p {PORT}",
            home = self.home().display(),
            t = t.display()
        );
        let log = std::fs::File::create(self.path("sshd.log")).unwrap();
        self.sshd = Some(
            Command::new("ip")
                .args(["netns", "exec", &self.ns, "sh", "-c", &script])
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start sshd in the namespace"),
        );
        let to: SocketAddr = format!("{}:{PORT}", self.addr).parse().unwrap();
        wait_for("sshd listens", Duration::from_secs(10), || {
            TcpStream::connect_timeout(&to, Duration::from_millis(200))
                .ok()
                .map(|_| ())
        });
    }

    fn start_agent(&mut self) {
        let sock = self.path("agent.sock");
        self.agent = Some(
            Command::new("ssh-agent")
                .args(["-D", "-a"])
                .arg(&sock)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start ssh-agent"),
        );
        wait_for("the agent's socket", Duration::from_secs(5), || {
            sock.exists().then_some(())
        });
    }

    /// An `ssh` first on the node's PATH that uses the test's config, never `~/.ssh`.
    fn write_client_config(&self) {
        std::fs::write(
            self.path("ssh_config"),
            format!(
                "Host *\n  StrictHostKeyChecking accept-new\n  UserKnownHostsFile {t}/known_hosts\n  \
                 GlobalKnownHostsFile /dev/null\n  IdentityFile {t}/no-such-key\n",
                t = self.tmp.path().display()
            ),
        )
        .unwrap();
        let bin = self.path("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let wrapper = bin.join("ssh");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nexec /usr/bin/ssh -F {} \"$@\"\n",
                self.path("ssh_config").display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// The variables the node needs: the agent, the `ssh` wrapper first on PATH, a temp HOME.
    pub fn client_env(&self) -> Vec<(String, String)> {
        let path = std::env::var("PATH").unwrap_or_default();
        vec![
            ("SSH_AUTH_SOCK".into(), self.p("agent.sock")),
            ("PATH".into(), format!("{}:{path}", self.p("bin"))),
            ("HOME".into(), self.p("client-home")),
        ]
    }

    /// Authorizes the client key there and puts it in the agent.
    pub fn authorize_and_add_key(&self) {
        let public = std::fs::read_to_string(self.path("client_key.pub")).unwrap();
        std::fs::write(self.path("authorized_keys"), public).unwrap();
        let out = Command::new("ssh-add")
            .arg(self.path("client_key"))
            .env("SSH_AUTH_SOCK", self.path("agent.sock"))
            .output()
            .unwrap();
        assert!(out.status.success(), "ssh-add: {:?}", text(&out));
    }

    /// sshd's own pid (its listener).
    pub fn sshd_pid(&self) -> u32 {
        self.sshd.as_ref().map(Child::id).unwrap_or_default()
    }

    /// Every process in the namespace but sshd's listener, as `ps` shows them.
    pub fn others(&self) -> Vec<String> {
        let out = run("ip", &["netns", "pids", &self.ns]);
        let sshd = self.sshd_pid().to_string();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter(|p| *p != sshd)
            .filter_map(|p| {
                let ps = run("ps", &["-o", "pid=,args=", "-p", p]);
                let line = String::from_utf8_lossy(&ps.stdout).trim().to_string();
                (!line.is_empty()).then_some(line)
            })
            .collect()
    }

    pub fn sshd_log(&self) -> String {
        std::fs::read_to_string(self.path("sshd.log")).unwrap_or_default()
    }
}

impl Drop for SshHost {
    fn drop(&mut self) {
        // Whatever a failed test left running in there, then sshd itself.
        let out = run("ip", &["netns", "pids", &self.ns]);
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
        for child in [self.sshd.as_mut(), self.agent.as_mut()]
            .into_iter()
            .flatten()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = run("ip", &["link", "del", &self.veth]);
        let _ = run("ip", &["netns", "del", &self.ns]);
    }
}
