//! Who is on the other end of a loopback TCP connection. Any local user can connect to a port on
//! 127.0.0.1; the kernel's socket table (/proc/net/tcp) says which user owns the client's end,
//! and connections from other users are closed before a byte is read.

use std::net::{SocketAddr, SocketAddrV4};

use tokio::net::{TcpListener, TcpStream};

/// A listener that hands axum only connections from this process's own user.
pub struct SameUser(pub TcpListener);

impl axum::serve::Listener for SameUser {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            match self.0.accept().await {
                Ok((io, addr)) => {
                    let local = io.local_addr().ok();
                    // SAFETY: getuid cannot fail.
                    let me = unsafe { libc::getuid() };
                    if local.is_some_and(|l| owner(addr, l) == Some(me)) {
                        return (io, addr);
                    }
                    // Dropped: closed unanswered.
                }
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// The uid owning the client socket `client` connected to `server`, from /proc/net/tcp.
pub fn owner(client: SocketAddr, server: SocketAddr) -> Option<u32> {
    let (SocketAddr::V4(c), SocketAddr::V4(s)) = (client, server) else { return None };
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    find_owner(&table, c, s)
}

/// In a /proc/net/tcp table, the uid of the socket whose local end is `client` and remote end
/// is `server`.
fn find_owner(table: &str, client: SocketAddrV4, server: SocketAddrV4) -> Option<u32> {
    let (want_local, want_remote) = (hex_addr(client), hex_addr(server));
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        (f.len() > 7 && f[1].eq_ignore_ascii_case(&want_local) && f[2].eq_ignore_ascii_case(&want_remote)).then(|| f[7].parse().ok()).flatten()
    })
}

/// The kernel's form of an address: the IPv4 address as a little-endian 32-bit hex number, the
/// port in big-endian hex.
fn hex_addr(a: SocketAddrV4) -> String {
    format!("{:08X}:{:04X}", u32::from_le_bytes(a.ip().octets()), a.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_client_sockets_owner() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
           0: 0100007F:0BDA 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n\
           1: 0100007F:A2C4 0100007F:0BDA 01 00000000:00000000 00:00000000 00000000  1000        0 2 1 0 20 4 30 10 -1\n";
        let client: SocketAddrV4 = "127.0.0.1:41668".parse().unwrap();
        let server: SocketAddrV4 = "127.0.0.1:3034".parse().unwrap();
        assert_eq!(find_owner(table, client, server), Some(1000));
        assert_eq!(find_owner(table, server, client), None, "the server's own end is not the client");
    }

    #[test]
    fn a_real_loopback_connection_is_ours() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        // SAFETY: getuid cannot fail.
        let me = unsafe { libc::getuid() };
        assert_eq!(owner(client.local_addr().unwrap(), listener.local_addr().unwrap()), Some(me));
    }
}
