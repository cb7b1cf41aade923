//! Small cryptographic building blocks; the hard parts come from RustCrypto and `getrandom`.

pub mod base62;
pub mod digest;
pub mod random;
pub mod scanning_signature;
pub mod sigv4;
