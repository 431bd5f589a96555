//! The compression codecs the log cleaner needs to open and rewrite
//! compressed batches, from the `kafka-protocol` crate (the storage crate
//! itself carries no codec and knows no Kafka library).

use bytes::Buf;
use kafka_protocol::compression::{Compressor, Decompressor, Gzip, Lz4, Snappy, Zstd};
use sluice_storage::RecordCodec;

/// Kafka's codec ids: 1 gzip, 2 snappy (xerial framing), 3 lz4 (frame
/// format), 4 zstd.
pub struct KafkaCodecs;

fn unpack<D: for<'a> Decompressor<&'a [u8]>>(data: &[u8]) -> Option<Vec<u8>> {
    let mut input = data;
    D::decompress(&mut input, |out| Ok(out.copy_to_bytes(out.remaining()).to_vec())).ok()
}

fn pack<C: Compressor<Vec<u8>>>(data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len() / 2 + 64);
    C::compress(&mut out, |buf| {
        bytes::BufMut::put_slice(buf, data);
        Ok(())
    })
    .ok()?;
    Some(out)
}

impl RecordCodec for KafkaCodecs {
    fn decompress(&self, codec: u8, data: &[u8]) -> Option<Vec<u8>> {
        match codec {
            1 => unpack::<Gzip>(data),
            2 => unpack::<Snappy>(data),
            3 => unpack::<Lz4>(data),
            4 => unpack::<Zstd>(data),
            _ => None,
        }
    }

    fn compress(&self, codec: u8, data: &[u8]) -> Option<Vec<u8>> {
        match codec {
            1 => pack::<Gzip>(data),
            2 => pack::<Snappy>(data),
            3 => pack::<Lz4>(data),
            4 => pack::<Zstd>(data),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_round_trips() {
        let data: Vec<u8> = (0..10_000u32).flat_map(|i| (i % 251).to_be_bytes()).collect();
        for codec in 1..=4 {
            let z = KafkaCodecs.compress(codec, &data).unwrap();
            assert!(z.len() < data.len(), "codec {codec}");
            assert_eq!(KafkaCodecs.decompress(codec, &z).unwrap(), data, "codec {codec}");
            assert_eq!(KafkaCodecs.decompress(codec, b"not compressed at all"), None, "codec {codec}");
        }
        assert_eq!(KafkaCodecs.decompress(5, &data), None);
    }
}
