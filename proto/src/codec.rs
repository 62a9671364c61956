//! The protobuf codec every pld service and client uses: tonic's prost codec with buffers
//! sized for pld's messages.
//!
//! tonic starts every request's decode buffer and every response's encode buffer at 8 KiB.
//! pld's messages are mostly a few hundred bytes, and an 8 KiB allocation per call is a
//! large-chunk allocation for glibc (it consolidates its free lists first), which showed in
//! the controller's profile under load. A 1 KiB start still fits most messages in one
//! allocation; larger ones grow the buffer as before.

use std::marker::PhantomData;

use tonic::codec::{BufferSettings, Codec};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// Starting size of a call's encode and decode buffer.
const BUFFER_SIZE: usize = 1024;
/// Bytes a streaming encoder buffers before it yields (tonic's default).
const YIELD_THRESHOLD: usize = 32 * 1024;

/// tonic's prost codec with [`BUFFER_SIZE`] buffers; named in `build.rs` as the codec of the
/// generated code.
#[derive(Debug, Clone)]
pub struct PldCodec<T, U> {
    _types: PhantomData<(T, U)>,
}

impl<T, U> Default for PldCodec<T, U> {
    fn default() -> Self {
        PldCodec {
            _types: PhantomData,
        }
    }
}

fn settings() -> BufferSettings {
    BufferSettings::new(BUFFER_SIZE, YIELD_THRESHOLD)
}

impl<T, U> Codec for PldCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(settings())
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<T, U>::raw_decoder(settings())
    }
}
