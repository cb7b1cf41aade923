//! Reading a body without trusting its size: chunk by chunk, stopping past a cap, so no
//! client or provider can make the Worker hold more than it means to.

use futures_util::StreamExt;
use worker::ByteStream;

pub enum Capped {
    Whole(Vec<u8>),
    TooLarge,
}

pub async fn read_capped(mut stream: ByteStream, cap: usize) -> worker::Result<Capped> {
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if bytes.len() + chunk.len() > cap {
            return Ok(Capped::TooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Capped::Whole(bytes))
}
