//! A real OpenSSH sshd on a free loopback port, with its own host keys and config.
