//! A second host reached over a real OpenSSH: its own `sshd` on a loopback port, with its own
//! host key, configuration and authorized key, and a second spool and tmux server (see
//! tests/remote.rs).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::{Mesh, bin, text};

/// How long a remote call is given in these tests.
pub const T: Duration = Duration::from_secs(30);

pub const SSHD: &str = "/usr/sbin/sshd";

/// A host reached over ssh: its sshd, the client configuration naming it, and its side of the
/// mesh (its spool and tmux server).
pub struct Remote {
    /// The remote side: `REPOWIRE_HOME` of the ssh sessions, and its own tmux server.
    pub far: Mesh,
    /// The local side: the asker's spool.
    pub near: Mesh,
    pub sshd: Child,
    pub ssh_config: PathBuf,
    /// Where the fake hosts' files live.
    pub dir: tempfile::TempDir,
}

/// Why this machine cannot run a real sshd for the tests, if it cannot.
pub fn sshd_missing() -> Option<String> {
    for tool in [SSHD, "ssh", "ssh-keygen"] {
        let ok = Command::new(tool)
            .arg("-V")
            .stdin(Stdio::null())
            .output()
            .is_ok();
        if !ok {
            return Some(format!(
                "{tool} is not installed (apt-get install openssh-server openssh-client)"
            ));
        }
    }
    None
}

/// Skips the calling test (with the reason on stderr) where no real sshd can run.
#[macro_export]
macro_rules! need_sshd {
    () => {
        need_tmux!();
        if let Some(why) = $crate::util::ssh::sshd_missing() {
            $crate::util::skipped(&why);
            return;
        }
    };
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "repowire-test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "ssh-keygen: {}", text(&out.stderr));
}

pub fn whoami() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    text(&out.stdout).trim().to_string()
}

impl Remote {
    /// Starts sshd and writes a client configuration with these hosts:
    /// `devbox` (repowire on its PATH), `norepowire` (the same host, a PATH without it),
    /// `oldrepowire` (a PATH with a repowire that has no `repowire remote`),
    /// `badkey` (a key it does not authorize), `nowhere` (a closed port), and `laptop`: the
    /// near side itself (its spool), for questions asked back from the far side.
    pub fn start() -> Remote {
        let dir = tempfile::Builder::new().prefix("rwssh").tempdir().unwrap();
        let d = dir.path();
        // sshd run as root wants its privilege separation directory, which the Debian
        // service would create.
        let root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
        if root && !Path::new("/run/sshd").exists() {
            std::fs::create_dir_all("/run/sshd").unwrap();
        }
        for k in ["host_key", "user_key", "bad_key"] {
            keygen(&d.join(k));
        }
        std::fs::copy(d.join("user_key.pub"), d.join("authorized_keys")).unwrap();
        let bin_dir = d.join("bin");
        std::fs::create_dir(&bin_dir).unwrap();
        std::os::unix::fs::symlink(bin(), bin_dir.join("repowire")).unwrap();
        let home = d.join("home");
        std::fs::create_dir(&home).unwrap();
        let far = Mesh::new();
        let near = Mesh::new();
        let path = std::env::var("PATH").unwrap_or_default();
        let (port, bare_port, old_port) = (free_port(), free_port(), free_port());
        let near_port = free_port();
        // What a repowire from before `repowire remote` says to it.
        let old_dir = d.join("old");
        std::fs::create_dir(&old_dir).unwrap();
        std::fs::write(
            old_dir.join("repowire"),
            "#!/bin/sh\necho \"error: unrecognized subcommand 'remote'\" >&2\nexit 2\n",
        )
        .unwrap();
        std::fs::set_permissions(
            old_dir.join("repowire"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let config = format!(
            "Port {port}\nPort {bare_port}\nPort {old_port}\nPort {near_port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\n\
             AuthorizedKeysFile {d}/authorized_keys\nPidFile none\n\
             # The test's files are in /tmp, which anyone may write to.\nStrictModes no\n\
             UsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PermitRootLogin prohibit-password\n\
             SetEnv PATH={bin}:{path} HOME={home} REPOWIRE_HOME={spool}\n\
             Match LocalPort {bare_port}\n  SetEnv PATH=/usr/bin:/bin HOME={home}\n\
             Match LocalPort {old_port}\n  SetEnv PATH={old}:/usr/bin:/bin HOME={home}\n\
             Match LocalPort {near_port}\n  SetEnv PATH={bin}:{path} HOME={home} REPOWIRE_HOME={near_spool}\n",
            near_spool = near.home.display(),
            old = old_dir.display(),
            d = d.display(),
            bin = bin_dir.display(),
            home = home.display(),
            spool = far.home.display(),
        );
        std::fs::write(d.join("sshd_config"), config).unwrap();
        let log = std::fs::File::create(d.join("sshd.log")).unwrap();
        let mut sshd = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let host_key = std::fs::read_to_string(d.join("host_key.pub")).unwrap();
        let host_key: Vec<&str> = host_key.split_whitespace().take(2).collect();
        std::fs::write(
            d.join("known_hosts"),
            format!("repowire-test-host {}\n", host_key.join(" ")),
        )
        .unwrap();
        let closed = free_port();
        let user = whoami();
        let host = |alias: &str, port: u16, key: &str| {
            format!(
                "Host {alias}\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n  \
                 IdentityFile {d}/{key}\n  IdentitiesOnly yes\n  IdentityAgent none\n  \
                 HostKeyAlias repowire-test-host\n  UserKnownHostsFile {d}/known_hosts\n  \
                 GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n",
                d = d.display()
            )
        };
        let ssh_config = d.join("ssh_config");
        std::fs::write(
            &ssh_config,
            [
                host("devbox", port, "user_key"),
                host("norepowire", bare_port, "user_key"),
                host("oldrepowire", old_port, "user_key"),
                host("badkey", port, "bad_key"),
                host("nowhere", closed, "user_key"),
                host("laptop", near_port, "user_key"),
            ]
            .concat(),
        )
        .unwrap();
        let r = Remote {
            far,
            near,
            sshd: {
                // Up once it accepts connections.
                let end = Instant::now() + T;
                while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                    if let Some(s) = sshd.try_wait().unwrap() {
                        panic!(
                            "sshd exited ({s}): {}",
                            std::fs::read_to_string(d.join("sshd.log")).unwrap_or_default()
                        );
                    }
                    assert!(Instant::now() < end, "sshd did not listen on port {port}");
                    std::thread::sleep(Duration::from_millis(50));
                }
                sshd
            },
            ssh_config,
            dir,
        };
        // The fixture itself: ssh reaches the host and runs this build there.
        let mut check = Command::new("sh");
        check.arg("-c").arg(format!(
            "ssh -F '{}' -o BatchMode=yes devbox repowire --version",
            r.ssh_config.display()
        ));
        let out = r.run(check);
        assert!(
            out.status.success() && text(&out.stdout).starts_with("repowire "),
            "ssh devbox repowire --version: {}{}; sshd: {}",
            text(&out.stdout),
            text(&out.stderr),
            r.sshd_log()
        );
        r
    }

    pub fn sshd_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// Local `repowire`, reaching the hosts through the test's ssh configuration.
    pub fn cmd(&self) -> Command {
        let mut c = self.near.cmd();
        c.env(
            "REPOWIRE_SSH",
            format!("ssh -F '{}'", self.ssh_config.display()),
        )
        .env_remove("SSH_AUTH_SOCK");
        c
    }

    pub fn run(&self, mut cmd: Command) -> Output {
        crate::util::run_for(
            {
                cmd.stdin(Stdio::null());
                cmd
            },
            Duration::from_secs(120),
        )
    }

    /// Runs local `repowire ARGS`.
    pub fn repowire(&self, args: &[&str]) -> Output {
        let mut c = self.cmd();
        c.args(args);
        self.run(c)
    }

    /// Local `repowire ARGS` that must succeed: its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.repowire(args);
        assert!(
            out.status.success(),
            "repowire {args:?} failed: {}; sshd: {}",
            text(&out.stderr),
            self.sshd_log()
        );
        text(&out.stdout)
    }

    /// Local `repowire ARGS` that must fail with `code`: its stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.repowire(args);
        let err = text(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(code),
            "repowire {args:?}: {err}{}",
            text(&out.stdout)
        );
        err
    }

    pub fn set_remotes(&self, hosts: &[&str]) {
        std::fs::create_dir_all(&self.near.home).unwrap();
        let list = hosts.join(", ");
        std::fs::write(
            self.near.home.join("config.yaml"),
            format!("remotes: [{list}]\n"),
        )
        .unwrap();
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        let _ = self.sshd.kill();
        let _ = self.sshd.wait();
    }
}
