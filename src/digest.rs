//! Digests written as text: the config hash, a plan's digest and signature, a file target's SHA-256.

/// The SHA-256 of `bytes` as lowercase hexadecimal (ring, which also signs plans and carries TLS).
#[must_use]
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

/// Bytes as lowercase hexadecimal.
#[must_use]
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
